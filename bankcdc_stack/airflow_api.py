"""Airflow's REST API as the UI uses it (JWT from /auth/token): for tests, benchmarks and set-up."""

from __future__ import annotations

import time
from typing import Any

import requests

from bankcdc_stack.errors import StackError


class AirflowApiError(StackError):
    """The Airflow REST API refused or failed a request (the message has the status and body)."""


class AirflowApi:
    def __init__(self, base_url: str, user: str, password: str) -> None:
        self.base = base_url.rstrip("/")
        response = requests.post(f"{self.base}/auth/token", json={"username": user, "password": password},
                                 timeout=30)
        if not response.ok:
            raise AirflowApiError(f"POST /auth/token as {user}: {response.status_code} {response.text[:300]}")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    @classmethod
    def for_stack(cls, env: dict[str, str], password: str, user: str = "admin") -> "AirflowApi":
        return cls(f"http://127.0.0.1:{env['AIRFLOW_PORT']}", user, password)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.session.request(method, f"{self.base}/api/v2{path}", timeout=60, **kwargs)
        if not response.ok:
            raise AirflowApiError(f"{method} {path}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def wait_parsed(self, dag_id: str, timeout: float = 600) -> None:
        """Until the dag-processor has serialised the DAG."""
        deadline = time.monotonic() + timeout
        while not self.session.get(f"{self.base}/api/v2/dags/{dag_id}", timeout=30).ok:
            if time.monotonic() > deadline:
                raise AirflowApiError(f"the dag-processor has not parsed {dag_id} after {timeout:.0f}s")
            time.sleep(5)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": paused})

    def is_paused(self, dag_id: str) -> bool:
        return bool(self.call("GET", f"/dags/{dag_id}")["is_paused"])

    def trigger(self, dag_id: str) -> str:
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None})["dag_run_id"]

    def runs(self, dag_id: str, state: str | None = None, limit: int = 100, **params: Any) -> list[dict[str, Any]]:
        """The DAG's runs, newest first."""
        query = {"limit": limit, "order_by": "-start_date", **params, **({"state": state} if state else {})}
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params=query)["dag_runs"]

    def run_ids(self, dag_id: str, state: str) -> list[str]:
        return [run["dag_run_id"] for run in self.runs(dag_id, state)]

    def set_run_state(self, dag_id: str, run_id: str, state: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", json={"state": state})

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.run(dag_id, run_id)["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                         params={"limit": 200})["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log of one try as text (what the UI shows, trigger lines included)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        response = self.session.get(f"{self.base}/api/v2{path}", params={"full_content": "true"},
                                    headers={"Accept": "application/x-ndjson"}, timeout=60)
        if not response.ok:
            raise AirflowApiError(f"GET {path}: {response.status_code} {response.text[:500]}")
        return response.text

    def set_variable(self, key: str, value: str) -> None:
        self.session.delete(f"{self.base}/api/v2/variables/{key}", timeout=30)
        self.call("POST", "/variables", json={"key": key, "value": value})

    def delete_variable(self, key: str) -> None:
        self.session.delete(f"{self.base}/api/v2/variables/{key}", timeout=30)
