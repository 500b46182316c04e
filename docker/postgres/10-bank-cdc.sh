#!/bin/bash
# PostgreSQL image init (runs once, on an empty volume): databases, schema.sql, role passwords,
# the token key, TLS-only TCP logins.
# Passwords come from the container environment; psql variables keep them out of the SQL text.
# The same roles and privileges as the local stack (bankcdc_stack/services/postgres.py): the
# superuser is used here only; every running component logs in as a role without SUPERUSER.
set -euo pipefail
for name in POSTGRES_PASSWORD FILLER_DB_PASSWORD DEBEZIUM_DB_PASSWORD BANK_READER_DB_PASSWORD AIRFLOW_DB_PASSWORD \
            BANK_TOKEN_KEY; do
    if [ -z "${!name:-}" ] || [ "${!name}" = change-me ]; then
        echo "10-bank-cdc.sh: $name is empty or still the .env.example placeholder: set it in .env" >&2
        exit 1
    fi
done
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v airflow_pw="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE DATABASE bank;
CREATE ROLE airflow LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
REVOKE CONNECT, TEMPORARY ON DATABASE airflow FROM PUBLIC;
SQL
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname bank -f /bank-cdc/schema.sql
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname bank \
     -v filler_pw="$FILLER_DB_PASSWORD" -v debezium_pw="$DEBEZIUM_DB_PASSWORD" \
     -v reader_pw="$BANK_READER_DB_PASSWORD" <<'SQL'
ALTER ROLE bank_filler PASSWORD :'filler_pw';
ALTER ROLE debezium PASSWORD :'debezium_pw';
ALTER ROLE bank_reader PASSWORD :'reader_pw';
SQL
# the key of the card-data tokens; a failing statement is not logged, so the key never is
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname bank -v token_key="$BANK_TOKEN_KEY" <<'SQL'
SET log_min_error_statement = panic;
SELECT bank_vault.install_token_key(:'token_key');
SQL
# TCP logins over TLS only (compose starts the server with ssl=on and the stack's certificate); the
# image's catch-all `host` line becomes `hostssl`, and whatever else arrives without TLS is refused
sed -i -E 's/^host(\s+all\s+all\s+all\s+)/hostssl\1/' "$PGDATA/pg_hba.conf"
echo "hostnossl all all all reject" >> "$PGDATA/pg_hba.conf"
