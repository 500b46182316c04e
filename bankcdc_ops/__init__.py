"""Operations logic behind bank-cdc's Airflow DAGs (airflow/dags/ only wires tasks to it).

Modules, one responsibility each:
    settings         connection ids, Airflow Variable names and defaults, where the dbt project is
    tables           the five source tables: keys, ODS models, reconciled columns
    connections      clients for ClickHouse, PostgreSQL, Kafka and Connect, from Airflow connections
    monitoring       figures, thresholds, the monitoring table, the failure message
    probes           what cdc_monitoring measures at each stage
    backfill         pg_to_ch: PostgreSQL -> ClickHouse raw, as snapshot-like versions
    reconciliation   PostgreSQL against ODS, per table and day
    dbt              Cosmos configuration for the dbt project, the ODS build record
    dbt_cli          the dbt CLI for people, tests and benchmarks (dbt/profiles.yml)
Heavy client libraries are imported inside functions, so importing a module is cheap at DAG parse time.
"""
