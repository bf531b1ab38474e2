SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';
REVOKE ALL PRIVILEGES ON ALL TABLES IN SCHEMA feature_store FROM "{{name}}";
REVOKE USAGE ON SCHEMA feature_store FROM "{{name}}";
DROP ROLE IF EXISTS "{{name}}";
