-- bank-cdc ClickHouse layers. Applied in file order at every stack start (idempotent);
-- in production by clickhouse-server's /docker-entrypoint-initdb.d; on a cluster rendered ON CLUSTER
-- and Replicated by bankcdc_stack.clickhouse_ddl (docker-compose.cluster.yml).
CREATE DATABASE IF NOT EXISTS raw COMMENT 'CDC changelog: one row per Debezium event';
CREATE DATABASE IF NOT EXISTS stg COMMENT 'dbt staging views: typed, renamed, one row per change';
CREATE DATABASE IF NOT EXISTS ods COMMENT 'dbt incremental: current state and transaction history';
CREATE DATABASE IF NOT EXISTS marts COMMENT 'dbt fraud marts';
CREATE DATABASE IF NOT EXISTS monitoring COMMENT 'CDC lag time series';
