CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
GRANT USAGE ON SCHEMA inference_logs TO "{{name}}";
GRANT SELECT ON ALL TABLES IN SCHEMA inference_logs TO "{{name}}";
