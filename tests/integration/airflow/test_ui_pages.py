"""The bank-cdc pages in the Airflow UI, in a real browser (Debian's chromium, chromedriver).

A person logs in to Airflow, opens the CDC lag page and the fraud case queue from Airflow's
navigation, and reads what they show; the figures are checked against ClickHouse. Screenshots
go to $BANKCDC_TEST_ARTIFACTS (default .state/test/artifacts).
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import quote
from pathlib import Path
from typing import Iterator

import psycopg2
import pytest
import requests
from clickhouse_connect.driver.client import Client

from bankcdc_ops.ui.lag import STAGES
from bankcdc_stack.stack import Stack

from ..cdc_helpers import assert_raw_equals_pg
from .conftest import REPO, DagTestRun, airflow_cli, dag_test, touch_every_table

pytestmark = pytest.mark.integration
ARTIFACTS = Path(os.environ.get("BANKCDC_TEST_ARTIFACTS", REPO / ".state" / "test" / "artifacts"))
WAIT_S = 60
SEVERITY = {"ok": 0, "warming": 1, "breached": 2}


@pytest.fixture(scope="module")
def airflow_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.ctx.env['AIRFLOW_PORT']}"


@pytest.fixture(scope="module")
def monitored(stack_env: dict[str, str], ods_build: DagTestRun, pg_admin_dsn: str,
              ch_admin: Client) -> DagTestRun:
    """ODS and the marts built, then one cdc_monitoring run on a stack in use: the figures the lag
    page charts."""
    touch_every_table(pg_admin_dsn)
    assert_raw_equals_pg(pg_admin_dsn, ch_admin)
    run = dag_test(stack_env, "cdc_monitoring")
    assert run.ok, run.tail()
    return run


@pytest.fixture(scope="module")
def browser(stack: Stack, airflow_url: str) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    assert chromium and driver_path, "chromium and chromedriver are installed by ./stack test (Debian packages)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(WAIT_S)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(condition, message=f"waiting for {what}")


def _css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


@pytest.fixture(scope="module")
def logged_in(browser, stack: Stack, airflow_url: str):
    """Through Airflow's own login page, as a person would: the page asks for it first."""
    from selenium.webdriver.common.by import By

    browser.get(f"{airflow_url}/bankcdc/lag")
    _wait(browser, lambda d: "/auth/login" in d.current_url, "the redirect to Airflow's login page")
    user = _wait(browser, lambda d: d.find_element(By.NAME, "username"), "the login form")
    user.send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(stack.ctx.secrets["AIRFLOW_ADMIN_PASSWORD"])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    _wait(browser, lambda d: "/auth/login" not in d.current_url, "the login to finish")
    return browser


def _open_in_airflow(driver, airflow_url: str, route: str, loaded: str) -> None:
    """An external view of the plugin, from Airflow's navigation: the page in Airflow's iframe."""
    driver.switch_to.default_content()
    driver.get(f"{airflow_url}/plugin/{route}")
    frame = _wait(driver, lambda d: (_css(d, "iframe") or [None])[0], f"Airflow's frame for {route}")
    driver.switch_to.frame(frame)
    _wait(driver, lambda d: d.execute_script("return document.body && document.body.dataset.loaded") == loaded,
          f"{route} to load its data")


def _screenshot(driver, name: str) -> None:
    driver.switch_to.default_content()
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def test_pages_need_an_airflow_login(airflow_url: str) -> None:
    for path in ("lag/data", "cases/data", "case/data?id=x", "vendor/plotly.min.js", "static/lag.js"):
        response = requests.get(f"{airflow_url}/bankcdc/{path}", timeout=30, allow_redirects=False)
        assert response.status_code == 401, f"/bankcdc/{path} answered {response.status_code} without a login"
    page = requests.get(f"{airflow_url}/bankcdc/cases", timeout=30, allow_redirects=False)
    assert page.status_code == 303 and "/auth/login" in page.headers["location"]


def _expected_stage_states(ch: Client) -> dict[str, str]:
    rows = ch.query("""
        SELECT stage, groupArray(state) FROM monitoring.cdc_lag
        WHERE (stage, dag_run_id) IN (SELECT stage, argMax(dag_run_id, ts) FROM monitoring.cdc_lag
                                      WHERE ts >= now64(3) - INTERVAL 1 DAY GROUP BY stage)
          AND ts >= now64(3) - INTERVAL 1 DAY
        GROUP BY stage""").result_rows
    return {stage: max(states, key=SEVERITY.__getitem__) for stage, states in rows}


def _slot_lag_figures(ch: Client) -> int:
    """Slot-lag figures of the last hour: the points the lag page's hour chart draws."""
    return ch.query("SELECT count() FROM monitoring.cdc_lag WHERE stage = 'replication_slot' "
                    "AND metric = 'lag_bytes' AND ts >= now64(3) - INTERVAL 1 HOUR").result_rows[0][0]


def test_lag_page_shows_every_stage_and_charts_monitoring_figures(logged_in, monitored: DagTestRun,
                                                                 airflow_url: str, ch_admin: Client) -> None:
    driver = logged_in
    # a scheduled cdc_monitoring run may add figures (and the hour may drop some) while the page
    # loads: count them before and after, and load again until both agree
    for _ in range(5):
        before = _slot_lag_figures(ch_admin)
        _open_in_airflow(driver, airflow_url, "cdc-lag", "hour")
        figures = _slot_lag_figures(ch_admin)
        if figures == before:
            break
    shown = {card.get_attribute("data-stage"): card for card in _css(driver, "#stages .stage")}
    assert list(shown) == list(STAGES), f"stages in pipeline order: {list(shown)}"
    expected = _expected_stage_states(ch_admin)
    colours = {"ok": "green", "warming": "amber", "breached": "red"}
    for stage, card in shown.items():
        state = expected[stage]
        assert card.get_attribute("data-state") == state, f"{stage}: the page says {card.get_attribute('data-state')}"
        assert card.get_attribute("data-colour") == colours[state]
        assert STAGES[stage] in card.text and state.upper() in card.text.upper()
        if state == "breached":
            link = card.find_element("css selector", "a.failing-run")
            assert link.get_attribute("href").startswith(f"{airflow_url}/dags/cdc_monitoring/runs/")
    assert figures > 0, "cdc_monitoring recorded no slot lag: the chart would prove nothing"
    chart = _css(driver, "#chart-slot_lag")[0]
    assert int(chart.get_attribute("data-points")) == figures
    drawn = _css(driver, "#chart-slot_lag .scatterlayer .point")
    assert len(drawn) == figures, f"{len(drawn)} points drawn for {figures} figures"
    assert _css(driver, "#chart-slot_lag .shapelayer path"), "the threshold line is drawn"
    assert "threshold" in chart.text
    _screenshot(driver, "cdc-lag")
    driver.switch_to.frame(_css(driver, "iframe")[0])
    driver.find_element("css selector", "#ranges button[data-range=week]").click()
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.loaded") == "week", "the week's charts")


def _newest_cases(ch: Client, scenario: str | None = None) -> list[tuple[str, list[int]]]:
    marts = [scenario] if scenario else ["rapid_withdrawals", "closed_card_attempts", "amount_probing"]
    union = " UNION ALL ".join(f"SELECT detection_id, window_end, transaction_ids FROM marts.fraud_{m}"
                               for m in marts)
    return [(d, list(ids)) for d, _, ids in ch.query(
        f"SELECT * FROM ({union}) ORDER BY window_end DESC, detection_id LIMIT 5").result_rows]


def test_case_queue_and_a_case_with_its_evidence(logged_in, monitored: DagTestRun, airflow_url: str,
                                                 ch_admin: Client, pg_admin_dsn: str) -> None:
    from selenium.webdriver.support.ui import Select

    driver = logged_in
    newest = _newest_cases(ch_admin)
    assert newest, "the marts hold no case: the queue would prove nothing"
    _open_in_airflow(driver, airflow_url, "fraud-cases", "all")
    rows = _css(driver, "#cases tbody tr")
    assert [r.get_attribute("data-detection-id") for r in rows[:len(newest)]] == [d for d, _ in newest]
    _screenshot(driver, "fraud-cases")

    driver.switch_to.frame(_css(driver, "iframe")[0])
    Select(driver.find_element("css selector", "#scenario")).select_by_value("amount_probing")
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.loaded") == "amount_probing",
          "the queue filtered by scenario")
    filtered = _css(driver, "#cases tbody tr")
    assert filtered and {r.get_attribute("data-scenario") for r in filtered} == {"amount_probing"}
    detection_id, transaction_ids = _newest_cases(ch_admin, "amount_probing")[0]
    assert filtered[0].get_attribute("data-detection-id") == detection_id

    filtered[0].find_element("css selector", "a").click()
    _wait(driver, lambda d: d.execute_script("return document.body.dataset.loaded") == "case", "the case page")
    shown_ids = driver.execute_script("return document.body.dataset.transactionIds").split(",")
    assert [int(i) for i in shown_ids] == transaction_ids
    evidence = {int(r.get_attribute("data-transaction-id")) for r in _css(driver, "#transactions tr[data-evidence='1']")}
    assert evidence == set(transaction_ids), "every transaction of the case is in its table, marked as evidence"
    card_id, last4, reason = ch_admin.query(
        "SELECT c.card_id, c.pan_last4, f.flag_reason FROM marts.fraud_amount_probing AS f "
        "INNER JOIN marts.dim_card_masked AS c ON c.card_id = f.card_id WHERE f.detection_id = {d:String} LIMIT 1",
        parameters={"d": detection_id}).result_rows[0]
    text = driver.find_element("css selector", "body").text
    assert f"•••• {last4}" in text and str(card_id) in text
    assert driver.find_element("css selector", "#reason").text == reason, "why it was flagged"
    with psycopg2.connect(pg_admin_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pan FROM bank.card WHERE card_id = %s", (card_id,))
        (pan,) = cur.fetchone()
    assert pan not in driver.page_source and pan not in text, "the card's number is never on the page"
    assert int(driver.find_element("css selector", "#timeline").get_attribute("data-points")) >= len(transaction_ids)
    assert _css(driver, "#timeline .scatterlayer .point"), "the timeline chart has points"
    _screenshot(driver, "fraud-case")


@pytest.fixture
def end_to_end_breached(stack_env: dict[str, str], monitored: DagTestRun) -> Iterator[DagTestRun]:
    """A cdc_monitoring run that failed: the end-to-end threshold set to 0 s for it."""
    out = airflow_cli(stack_env, "variables", "set", "cdc_max_end_to_end_seconds", "0", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    try:
        run = dag_test(stack_env, "cdc_monitoring")
    finally:
        out = airflow_cli(stack_env, "variables", "delete", "cdc_max_end_to_end_seconds", timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
    assert run.state == "failed" and run.run_id, run.tail()
    yield run


def test_a_breached_stage_is_red_and_links_its_failing_run(logged_in, end_to_end_breached: DagTestRun,
                                                          airflow_url: str) -> None:
    driver = logged_in
    _open_in_airflow(driver, airflow_url, "cdc-lag", "hour")
    card = _css(driver, "#stages .stage[data-stage=end_to_end]")[0]
    assert (card.get_attribute("data-state"), card.get_attribute("data-colour")) == ("breached", "red")
    assert "heartbeat_age_seconds" in card.text
    link = card.find_element("css selector", "a.failing-run")
    assert link.get_attribute("href") == \
        f"{airflow_url}/dags/cdc_monitoring/runs/{quote(end_to_end_breached.run_id, safe='')}"
    assert end_to_end_breached.run_id in link.text
    _screenshot(driver, "cdc-lag-breached")
