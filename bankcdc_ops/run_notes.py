"""The note of a DAG run, written through Airflow's REST API (the UI shows it on the run).

Tasks cannot write notes through the execution API, so the note goes through the public REST API
as the user of the airflow_api connection, whose role allows editing DAG runs only. A note is
informational: when the connection is missing or the API refuses, the task logs why and goes on.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from bankcdc_ops.settings import AIRFLOW_API_CONN_ID

log = logging.getLogger(__name__)


def set_run_note(dag_id: str, run_id: str, note: str, conn_id: str = AIRFLOW_API_CONN_ID) -> bool:
    """Write `note` on the run; True when Airflow accepted it."""
    import requests
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowRuntimeError

    try:
        conn = Connection.get(conn_id)
    except (AirflowNotFoundException, AirflowRuntimeError) as exc:
        log.warning("run note not written: no connection %s (%s)", conn_id, exc)
        return False
    base = f"{conn.schema or 'http'}://{conn.host}:{conn.port or 8080}"
    try:
        token = requests.post(f"{base}/auth/token", json={"username": conn.login, "password": conn.password},
                              timeout=10)
        token.raise_for_status()
        response = requests.patch(f"{base}/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}",
                                  params={"update_mask": "note"}, json={"note": note}, timeout=10,
                                  headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        response.raise_for_status()
    except requests.RequestException as exc:
        log.warning("run note not written: Airflow's API (connection %s) answered %s", conn_id, exc)
        return False
    return True
