SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';
REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA inference_logs FROM "{{name}}";
REVOKE USAGE ON SCHEMA inference_logs FROM "{{name}}";
DROP ROLE IF EXISTS "{{name}}";
