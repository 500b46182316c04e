"""bank-cdc pages in the Airflow UI: CDC lag charts for operators and a fraud case queue for analysts.

An Airflow 3 plugin (bankcdc_ops.ui.plugin, registered through the `airflow.plugins` entry
point) mounts a FastAPI app (bankcdc_ops.ui.app) under /bankcdc and adds its two pages to
Airflow's navigation. Every route needs an Airflow login. The lag page reads monitoring.cdc_lag
through the clickhouse_dwh connection. The fraud pages read through clickhouse_analyst, the
analyst's credentials, which reach PII only through the masked dimensions.
"""
