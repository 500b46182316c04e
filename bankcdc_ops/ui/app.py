"""The FastAPI app of the bank-cdc pages (mounted by bankcdc_ops.ui.plugin under /bankcdc).

Pages are static HTML that fetch JSON from the routes beside them, with relative URLs, so the
app works under any mount point. Every route, pages, data and assets alike, needs the Airflow
login (Airflow's own `get_user`: a bearer token or the UI's session cookie). A page asked for
without it redirects to Airflow's login page and back.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from bankcdc_ops.settings import CLICKHOUSE_ANALYST_CONN_ID, CLICKHOUSE_CONN_ID
from bankcdc_ops.ui import cases, lag

log = logging.getLogger(__name__)
MONITORING_CONN_ID = CLICKHOUSE_CONN_ID        # reads monitoring.cdc_lag, as cdc_monitoring writes it
ANALYST_CONN_ID = CLICKHOUSE_ANALYST_CONN_ID   # the fraud pages: marts, PII-free ODS, masked dimensions
STATIC = Path(str(resources.files("bankcdc_ops.ui") / "static"))
PAGES = {"lag": "lag.html", "cases": "cases.html", "case": "case.html"}
ASSETS = {"bankcdc.css": "text/css", "lag.js": "text/javascript", "cases.js": "text/javascript",
          "case.js": "text/javascript", "common.js": "text/javascript"}


class ClickHouseClients:
    """One clickhouse-connect client per Airflow connection, made at first use and dropped when
    a query fails, so a restarted ClickHouse or a changed connection is picked up."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def query(self, conn_id: str, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        from bankcdc_ops.connections import clickhouse

        with self._lock:
            client = self._clients.get(conn_id)
            if client is None:
                client = self._clients[conn_id] = clickhouse(conn_id)
        try:
            return client.query(sql, parameters=parameters or {}).result_rows
        except Exception:
            with self._lock:
                if self._clients.get(conn_id) is client:
                    del self._clients[conn_id]
            raise


def create_app() -> FastAPI:
    from airflow.api_fastapi.core_api.security import get_user

    clients = ClickHouseClients()
    logged_in = Depends(get_user)
    app = FastAPI(title="bank-cdc", description="CDC lag charts and the fraud case queue", docs_url=None,
                  redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def to_login(request: Request, exc: HTTPException) -> Response:
        page = request.url.path.rstrip("/").rsplit("/", 1)[-1] in PAGES
        if exc.status_code in (401, 403) and page:
            from airflow.api_fastapi.app import get_auth_manager

            return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    def page(name: str) -> FileResponse:
        return FileResponse(STATIC / PAGES[name], media_type="text/html", headers={"Cache-Control": "no-store"})

    @app.get("/lag", dependencies=[logged_in])
    def lag_page() -> FileResponse:
        return page("lag")

    @app.get("/cases", dependencies=[logged_in])
    def cases_page() -> FileResponse:
        return page("cases")

    @app.get("/case", dependencies=[logged_in])
    def case_page() -> FileResponse:
        return page("case")

    @app.get("/static/{name}", dependencies=[logged_in])
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, f"no asset {name}")
        return FileResponse(STATIC / name, media_type=ASSETS[name])

    @app.get("/vendor/plotly.min.js", dependencies=[logged_in])
    def plotly() -> FileResponse:
        """Plotly's browser bundle from the pinned plotly package (requirements.lock)."""
        bundle = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
        return FileResponse(bundle, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/lag/data", dependencies=[logged_in])
    def lag_data(range_: str = Query("hour", alias="range")) -> dict[str, Any]:
        if range_ not in lag.RANGES:
            raise HTTPException(422, f"range must be one of {', '.join(lag.RANGES)}, not {range_!r}")
        span, bucket = lag.RANGES[range_]
        since = dt.datetime.now(dt.timezone.utc) - span
        stages = lag.stage_states(clients.query(MONITORING_CONN_ID, lag.LATEST_FIGURES))
        for stage in stages:
            stage["run_link"] = lag.run_link(stage["run_id"]) if stage["run_id"] else None
        charts = [lag.chart_series(chart, clients.query(MONITORING_CONN_ID, lag.series_sql(bucket), {
            "stage": chart.stage, "metric": chart.metric, "since": since})) for chart in lag.CHARTS]
        return {"range": range_, "since": since.isoformat(), "stages": stages, "charts": charts}

    @app.get("/cases/data", dependencies=[logged_in])
    def cases_data(scenario: str = "") -> dict[str, Any]:
        if scenario and scenario not in cases.SCENARIOS:
            raise HTTPException(422, f"scenario must be one of {', '.join(cases.SCENARIOS)}, not {scenario!r}")
        rows = clients.query(ANALYST_CONN_ID, cases.queue_sql(scenario or None))
        return {"scenario": scenario or None, "scenarios": list(cases.SCENARIOS), "limit": cases.QUEUE_LIMIT,
                "cases": [cases.record(cases.QUEUE_FIELDS, row) for row in rows]}

    @app.get("/case/data", dependencies=[logged_in])
    def case_data(id_: str = Query(..., alias="id")) -> dict[str, Any]:
        try:
            scenario = cases.scenario_of(id_)
        except ValueError as exc:
            raise HTTPException(404, str(exc)) from None
        found = clients.query(ANALYST_CONN_ID, cases.case_sql(scenario), {"id": id_})
        if not found:
            raise HTTPException(404, f"no case {id_!r} in {cases.mart(scenario)}")
        case = dict(zip(cases.CASE_FIELDS, found[0]))
        card_rows = clients.query(ANALYST_CONN_ID, cases.CARD_SQL, {"card": case["card_id"]})
        card = cases.record(cases.CARD_FIELDS, card_rows[0]) if card_rows else None
        account_rows = (clients.query(ANALYST_CONN_ID, cases.ACCOUNT_SQL, {"account": card["account_id"]})
                        if card else [])
        transactions = clients.query(ANALYST_CONN_ID, cases.WINDOW_TRANSACTIONS_SQL, {
            "card": case["card_id"], "start": case["window_start"], "end": case["window_end"],
            "ids": list(case["transaction_ids"])})
        return {"case": cases.record(cases.CASE_FIELDS, found[0]), "card": card,
                "account": cases.record(cases.ACCOUNT_FIELDS, account_rows[0]) if account_rows else None,
                "transactions": [cases.record(cases.TRANSACTION_FIELDS, row) for row in transactions]}

    return app
