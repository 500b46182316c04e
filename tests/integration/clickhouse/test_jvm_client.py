"""ClickHouse's official Java client (client-v2 0.10.0, and jdbc-v2) against the endpoint.

client-v2 is what the ClickHouse Kafka Connect sink and JVM applications run. Unlike the Python
clients it names the output format and the database in the ``X-ClickHouse-Format`` and
``X-ClickHouse-Database`` headers of every request and reads results as
RowBinaryWithNamesAndTypes, so it checks parts of the HTTP interface the other clients do not.
The probe (jvm/clickhouse-probe) prints one JSON line per case; each test runs one case.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, Endpoint

pytestmark = pytest.mark.integration

PROBE = REPO / "jvm" / "clickhouse-probe"
JAR = PROBE / "target" / "clickhouse-probe.jar"
CASES = ["ping", "schema_lookup", "insert_and_query", "multi_block_read", "current_database", "server_error", "jdbc_query"]


def _tool(name: str, hint: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: {hint}")
    return found


def _jar_is_fresh() -> bool:
    if not JAR.exists():
        return False
    sources = [PROBE / "pom.xml", *(p for p in (PROBE / "src").rglob("*") if p.is_file())]
    return JAR.stat().st_mtime > max(p.stat().st_mtime for p in sources)


@pytest.fixture(scope="module")
def probe_jar() -> Path:
    """The probe's runnable jar, rebuilt with Maven when the pom or a source is newer than it."""
    if not _jar_is_fresh():
        _tool("javac", "the probe is compiled: install a JDK 17 (`apt-get install -y openjdk-17-jdk-headless`)")
        mvn = _tool("mvn", "install Maven (`apt-get install -y maven`)")
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(PROBE / "pom.xml"), "package"],
            capture_output=True, text=True, timeout=900, cwd=REPO,
        )
        if result.returncode != 0 or not JAR.exists():
            pytest.fail(f"building {JAR.relative_to(REPO)} failed ({result.returncode}):\n"
                        f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}")
    return JAR


def run_probe(jar: Path, ep: Endpoint, database: str, case: str) -> dict[str, object]:
    """Run one case as user default with ``database`` as the client's default database; return its JSON report."""
    java = _tool("java", "install a Java 17 runtime")
    cmd = [java, "-Xmx256m", "-XX:+ExitOnOutOfMemoryError", "-jar", str(jar),
           ep.url, "default", ep.passwords["default"], database, case]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the probe's {case} case did not finish within 300 s; output so far:\n{e.stdout}\n{e.stderr}")
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [r.get("case") for r in reports] == [case], (
        f"expected one report for {case}; exit {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
        f"stderr:\n{result.stderr[-4000:]}"
    )
    report = reports[0]
    assert result.returncode == (0 if report["ok"] is True else 1), (result.returncode, report, result.stderr[-2000:])
    return report


@pytest.mark.parametrize("case", CASES)
def test_client_v2_case(probe_jar: Path, ch_endpoint: Endpoint, database: str, case: str) -> None:
    """ping, getTableSchema, JSONEachRow/POJO inserts with queryAll and the binary reader, a
    result of 100 blocks, currentDatabase(), a server error's code, and one JDBC round trip."""
    report = run_probe(probe_jar, ch_endpoint, database, case)
    assert report["ok"] is True, f"{case} failed:\n{report['detail']}"
    assert report["detail"], report
