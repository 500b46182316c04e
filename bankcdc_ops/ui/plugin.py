"""The Airflow plugin: the bank-cdc app under /bankcdc, its two pages in Airflow's navigation.

Registered through the `airflow.plugins` entry point (pyproject.toml), so any Airflow with the
project installed loads it: the local stack's and the compose image's. The pages open inside
Airflow's UI (external views with a url_route) and also work on their own at /bankcdc/lag and
/bankcdc/cases.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/bankcdc"


def _app():
    from bankcdc_ops.ui.app import create_app

    return create_app()


class BankCdcPlugin(AirflowPlugin):
    name = "bank_cdc"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "bank-cdc pages"}]
    external_views = [
        {"name": "CDC lag", "href": "bankcdc/lag", "destination": "nav", "category": "bank-cdc",
         "url_route": "cdc-lag"},
        {"name": "Fraud cases", "href": "bankcdc/cases", "destination": "nav", "category": "bank-cdc",
         "url_route": "fraud-cases"},
    ]
