-- Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d), as
-- the superuser, by psql. The passwords come from the container's environment (psql \getenv),
-- which deploy/docker-compose.yml fills from deploy/.env.
\set ON_ERROR_STOP on
\getenv gatehouse_password POSTGRES_GATEHOUSE_PASSWORD
\getenv vault_password GATEHOUSE_DB_PASSWORD

-- Gatehouse's own database, owned by an ordinary role: not a superuser, so the trigger that
-- refuses UPDATE, DELETE and TRUNCATE on the audit table binds the bot too.
CREATE ROLE gatehouse WITH LOGIN PASSWORD :'gatehouse_password';
CREATE DATABASE gatehouse OWNER gatehouse;

-- The ML database whose access Gatehouse hands out (deploy/vault/setup.sh, connection
-- ml-postgres). Vault logs in as `vault` and creates one short-lived role per credential, so
-- `vault` may create roles, owns the schemas the role SQL in deploy/vault/sql/ grants on, and may
-- end the sessions of the roles it revokes (pg_signal_backend).
CREATE ROLE vault WITH LOGIN CREATEROLE PASSWORD :'vault_password';
GRANT pg_signal_backend TO vault;
CREATE DATABASE ml;

\connect ml
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
CREATE SCHEMA inference_logs AUTHORIZATION vault;
CREATE SCHEMA feature_store AUTHORIZATION vault;

-- A table in each, so a credential has something to read.
CREATE TABLE inference_logs.requests (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    prompt_masked text NOT NULL,
    latency_ms integer NOT NULL
);
ALTER TABLE inference_logs.requests OWNER TO vault;
INSERT INTO inference_logs.requests (model, prompt_masked, latency_ms)
VALUES ('ranker-v7', 'why was order [REDACTED] refunded?', 182),
       ('ranker-v7', 'show me items like [REDACTED]', 95);

CREATE TABLE feature_store.features (
    entity_id text NOT NULL,
    name text NOT NULL,
    value double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity_id, name)
);
ALTER TABLE feature_store.features OWNER TO vault;
INSERT INTO feature_store.features (entity_id, name, value)
VALUES ('user:42', 'purchases_7d', 3), ('user:42', 'refund_rate_90d', 0.02);
