#!/bin/bash
# PostgreSQL image init (runs once, on an empty volume): databases, schema.sql, role passwords.
# Passwords come from the container environment; psql variables keep them out of the SQL text.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v airflow_pw="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE DATABASE bank;
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname bank -f /bank-cdc/schema.sql
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname bank \
     -v filler_pw="$FILLER_DB_PASSWORD" -v debezium_pw="$DEBEZIUM_DB_PASSWORD" \
     -v reader_pw="$BANK_READER_DB_PASSWORD" <<'SQL'
ALTER ROLE bank_filler PASSWORD :'filler_pw';
ALTER ROLE debezium PASSWORD :'debezium_pw';
ALTER ROLE bank_reader PASSWORD :'reader_pw';
SQL
