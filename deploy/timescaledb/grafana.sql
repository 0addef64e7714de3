-- Runs once, when the timescaledb service initialises its data volume (docker-compose.yml
-- mounts it into /docker-entrypoint-initdb.d, run by psql in the kohaku database).
--
-- Creates "grafana", the role of Grafana's Kohaku data source: it may read every table and
-- view that the migrations create later (they run as postgres), and change nothing, so a
-- dashboard query can never alter the collected data.
\getenv grafana_password GRAFANA_DB_PASSWORD
CREATE ROLE grafana LOGIN PASSWORD :'grafana_password';
GRANT USAGE ON SCHEMA public TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
