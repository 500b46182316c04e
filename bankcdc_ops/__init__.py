"""Operations logic behind bank-cdc's Airflow DAGs (airflow/dags/ only wires tasks to it).

Modules, one responsibility each:
    settings         connection ids, Airflow Variable names and defaults, where the dbt project is
    tables           the five source tables: keys, ODS models, reconciled columns
    connections      clients for ClickHouse, PostgreSQL, Kafka and Connect, from Airflow connections
    monitoring       figures, thresholds, the monitoring table, the failure message
    probes           what cdc_monitoring measures at each stage
    backfill         pg_to_ch: PostgreSQL -> ClickHouse raw, as snapshot-like versions
    reconciliation   PostgreSQL against ODS, per table and day
    source_instant   the source instant T of a dbt_incremental run
    dbt              what the dbt DAGs run: one build as of T, the whole test suite
    dbt_build        one `dbt build` in the task's process, warm; the ODS build record
    dbt_manifest     the dbt graph the DAG renders from (no dbt at parse time)
    dbt_progress     each model's result, with its tests', from dbt's events
    dbt_cli          the dbt CLI for people, tests and benchmarks (dbt/profiles.yml)
    run_notes        the run's note in the Airflow UI
    executor         LocalExecutor forking task processes with dbt and the clients warm
    sparse_polling   the dag-processor and triggerer, polling the metadata database less often
    deferred         the tasks that run in the triggerer (model tasks, stage checks)
    ui               the CDC lag and fraud case pages in the Airflow UI
Heavy client libraries are imported inside functions, so importing a module is cheap at DAG parse time.
"""
