"""docker-compose.yml, validated by a real Compose parser and compared with the local stack.

No Docker engine runs here: Debian's `docker-compose` (1.29, `./stack test` installs it) renders
the file with `.env.example` (`docker-compose config`), which resolves every variable, anchor and
merge key and rejects what the Compose schema rejects. The rendered services, published ports and
environment names are then compared with what `bankcdc_stack` starts locally, read from the code
(services, ports(), DEPENDS_ON, client_environment, SECRET_NAMES), so the two modes cannot drift.
Prometheus and Grafana are compose only: their tests check that what they scrape, load and show
exists in the file, in docker/ and in what the consumer and the JMX exporter's rules export.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

import cdc_consumer.metrics
from bankcdc_ops.dbt_build import profile_variables
from bankcdc_stack.environment import airflow_connections, client_environment
from bankcdc_stack.secrets import SECRET_NAMES
from bankcdc_stack.services.airflow import ADMIN_USER, COMPONENTS
from bankcdc_stack.services.filler import SEED_DAYS, SEED_TXNS_PER_DAY
from bankcdc_stack.stack import DEPENDS_ON, Stack
from cdc_consumer.config import ConsumerSettings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
# its override for a replicated cluster (tests/unit/test_compose_cluster.py): one .env.example for both
CLUSTER_FILE = REPO / "docker-compose.cluster.yml"
ENV_EXAMPLE = REPO / ".env.example"
PLACEHOLDER = "change-me"
FIX = ("docker-compose not found: install Debian's docker-compose "
       "(`sudo apt-get install -y docker-compose`; `./stack test` installs it)")
# compose service -> the code it runs, whose environment reads must be satisfied by its `environment`
CODE_OF = {
    "consumer": ["cdc_consumer"],
    "connect-register": ["cdc_consumer/connectors.py"],
    "filler": ["filler"],
    "connect": ["debezium"],
    **{f"airflow-{c}": ["airflow/dags", "bankcdc_ops", "dbt"] for c in COMPONENTS},
}
# code of a package a container does not run: the consumer's image runs `cdc_consumer run`, and
# `register-connectors` (with Connect's REST credentials) runs in connect-register only
NOT_RUN_BY = {"consumer": {"cdc_consumer/connectors.py"}}
SOURCE_SUFFIXES = {".py", ".yml", ".yaml", ".sql", ".json"}
# compose only, long-running, no local counterpart: Prometheus and Grafana for teams that run Grafana
MONITORING = {"prometheus", "grafana"}
# secrets of those services, so not among the local stack's SECRET_NAMES
MONITORING_SECRETS = ("GRAFANA_ADMIN_PASSWORD",)
ALL_SECRETS = (*SECRET_NAMES, *MONITORING_SECRETS)


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if not found:
        pytest.fail(FIX)
    return found


def run_config(env: dict[str, str] | None = None, files: tuple[Path, ...] = (COMPOSE_FILE,)
               ) -> subprocess.CompletedProcess:
    """`docker-compose config` of `files` with .env.example and a clean environment (plus `env`):
    nothing from the caller's shell (an exported real password, say) can leak into the rendered file."""
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(), **(env or {})}
    return subprocess.run([compose_binary(), *(arg for f in files for arg in ("-f", str(f))),
                           "--env-file", str(ENV_EXAMPLE), "config"],
                          cwd=REPO, env=clean, capture_output=True, text=True, timeout=120)


@lru_cache(maxsize=None)
def _rendered(env_items: tuple[tuple[str, str], ...] = (), files: tuple[Path, ...] = (COMPOSE_FILE,)
              ) -> tuple[str, dict]:
    result = run_config(dict(env_items), files)
    assert result.returncode == 0, f"docker-compose rejects {' over '.join(f.name for f in reversed(files))}:\n" \
                                   f"{result.stderr}"
    return result.stdout, yaml.safe_load(result.stdout)


def rendered(env: dict[str, str] | None = None, files: tuple[Path, ...] = (COMPOSE_FILE,)) -> dict:
    return _rendered(tuple(sorted((env or {}).items())), files)[1]


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """The local stack's objects with default ports (nothing is started)."""
    state = tmp_path_factory.mktemp("compose-state")
    return Stack({"BANKCDC_STATE_DIR": str(state), "PATH": os.environ.get("PATH", "")})


def secret_markers() -> dict[str, str]:
    return {name: f"__{name}__" for name in ALL_SECRETS}


def secrets_of(service: dict) -> set[str]:
    """Secret names whose (marker) value reaches this service's environment."""
    text = yaml.safe_dump(service.get("environment") or {})
    return {name for name, marker in secret_markers().items() if marker in text}


def published(service: dict) -> list[tuple[str, int, int]]:
    """(host_ip, published, target) for each published port, short or long syntax."""
    out = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            out.append((":".join(parts[:-2]), int(parts[-2]), int(parts[-1])))
    return out


def compose_name(local: str) -> list[str]:
    """The compose services that run a local service (Airflow is one per component)."""
    return [f"airflow-{c}" for c in COMPONENTS] if local == "airflow" else [local]


def one_shots(services: dict) -> set[str]:
    return {name for name, svc in services.items() if str(svc.get("restart")) == "no"}


# ------------------------------------------------------------------ the file itself

def test_real_compose_parser_accepts_the_file() -> None:
    services = rendered()["services"]
    assert {"postgres", "kafka", "connect", "clickhouse", "consumer", "filler"} | MONITORING <= set(services)


def test_every_password_is_required_none_has_a_default() -> None:
    text = "\n".join(_strings(yaml.safe_load(COMPOSE_FILE.read_text())))
    for name in ALL_SECRETS:
        uses = re.findall(rf"\$\{{{name}([^}}]*)\}}", text)
        assert uses, f"{name} is not used by docker-compose.yml"
        assert all(use == f":?set {name} in .env" for use in uses), f"{name} has a default or no error: {uses}"
    # and the real parser enforces it (the process environment wins over --env-file)
    for name in ("DEBEZIUM_DB_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        result = run_config({name: ""})
        assert result.returncode != 0 and f"set {name} in .env" in result.stderr, result.stderr[-500:]


def _strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in _strings(key) + _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_env_example_names_every_variable_and_no_other() -> None:
    text = "\n".join(s for path in (COMPOSE_FILE, CLUSTER_FILE)
                     for s in _strings(yaml.safe_load(path.read_text())))  # comments aside
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    used |= set(re.findall(r"(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)", text))
    named = set(env_example()) - {"COMPOSE_PROJECT_NAME"}
    assert used == named, f"only in the compose files: {sorted(used - named)}; only in .env.example: {sorted(named - used)}"
    assert env_example().get("COMPOSE_PROJECT_NAME") == "bank-cdc"


def test_env_example_holds_placeholders_only() -> None:
    values = env_example()
    assert set(ALL_SECRETS) <= set(values), f"missing in .env.example: {sorted(set(ALL_SECRETS) - set(values))}"
    assert {name: values[name] for name in ALL_SECRETS if values[name] != PLACEHOLDER} == {}


def _real_secret_files() -> list[Path]:
    dirs = [REPO / ".state", *(REPO / ".state").glob("*/")]
    dirs += [Path(os.environ[v]) for v in ("BANKCDC_STATE_DIR", "TEST_BANKCDC_STATE_DIR") if os.environ.get(v)]
    files = [d / "secrets.env" for d in dirs if (d / "secrets.env").is_file()]
    return files + ([REPO / ".env"] if (REPO / ".env").is_file() else [])


def _real_secret_values() -> dict[str, str]:
    """value -> 'file:NAME' of every real secret on this machine (never printed)."""
    found = {}
    for path in _real_secret_files():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            value = value.strip().strip("'\"")
            if sep and key.strip() in ALL_SECRETS and len(value) >= 8 and value != PLACEHOLDER:
                found[value] = f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}:{key.strip()}"
    return found


def test_rendered_config_and_repository_hold_no_real_secret() -> None:
    real = _real_secret_values()
    output, _ = _rendered()
    leaked = sorted(where for value, where in real.items() if value in output or value in ENV_EXAMPLE.read_text())
    assert leaked == [], f"a real secret reaches `docker-compose config` output or .env.example: {leaked}"
    if not real:
        return
    with tempfile.NamedTemporaryFile("w", delete=False) as patterns:  # 0600, values never on a command line
        patterns.write("\n".join(real) + "\n")
    try:
        result = subprocess.run(["git", "grep", "-F", "-l", "-f", patterns.name], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(patterns.name)
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout.split() == [], f"tracked files hold a real secret value: {result.stdout.split()}"


def test_images_are_pinned_and_match_the_local_versions() -> None:
    services = rendered()["services"]
    images = {name: svc["image"] for name, svc in services.items()}
    for name, image in images.items():
        repo_part, _, tag = image.rpartition(":")
        assert repo_part and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
        assert re.match(r"v?\d+\.\d+", tag), f"{name}: {image!r} should pin a release, not a name"
    pom = (REPO / "jvm" / "pom.xml").read_text()
    kafka = re.search(r"<kafka.version>(.+?)</", pom).group(1)
    debezium = re.search(r"<debezium.version>(.+?)</", pom).group(1)
    assert images["kafka"] == f"apache/kafka:{kafka}"
    # Connect: Debezium's image plus the JMX exporter agent, built from docker/connect/Dockerfile
    connect_from = re.findall(r"^FROM (\S+)$", (REPO / "docker/connect/Dockerfile").read_text(), re.M)
    assert connect_from == [f"quay.io/debezium/connect:{debezium}"], connect_from
    assert services["connect"]["build"]["context"] == str(REPO / "docker" / "connect")
    assert images["connect"] == f"bank-cdc-connect:{debezium}-jmx{_jmx_exporter_download()['version']}", \
        "the connect image's tag names the Debezium and JMX exporter versions it is built with"
    version = re.search(r'^version = "(.+)"', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    airflow = re.search(r"^apache-airflow==(\S+)", (REPO / "requirements.lock").read_text(), re.M).group(1)
    dockerfile = (REPO / "airflow" / "Dockerfile").read_text()
    assert re.search(rf"^FROM apache/airflow:{re.escape(airflow)}-python3\.\d+$", dockerfile, re.M), \
        f"airflow/Dockerfile should build FROM apache/airflow:{airflow} (requirements.lock)"
    for name, svc in services.items():
        if images[name].startswith("bank-cdc:"):
            assert images[name] == f"bank-cdc:{version}"
            assert svc["build"]["dockerfile"] == "airflow/Dockerfile", name
            # the Airflow image's entrypoint runs `airflow <command>` unless it starts with bash/python
            assert "entrypoint" in svc or svc["command"][0] in ("airflow", "bash", "python"), (name, svc["command"])


def test_dockerignore_keeps_secrets_out_of_the_image() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".state", ".venv", ".git"} <= set(ignored)


def test_health_checks_and_dependency_conditions() -> None:
    services = rendered()["services"]
    once = one_shots(services)
    for name, svc in services.items():
        if published(svc) or name.startswith("airflow-") and name not in once:
            assert "healthcheck" in svc and svc["healthcheck"].get("test"), f"{name} has no health check"
        for dep, spec in (svc.get("depends_on") or {}).items():
            wanted = "service_completed_successfully" if dep in once else "service_healthy"
            assert isinstance(spec, dict) and spec.get("condition") == wanted, f"{name} -> {dep}: {spec}"
            if wanted == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no health check"


def test_data_in_named_volumes_binds_read_only_from_the_repository() -> None:
    config = rendered()
    declared = set(config.get("volumes") or {})
    for name, svc in config["services"].items():
        for mount in svc.get("volumes") or []:
            if isinstance(mount, dict):
                source, target, read_only = mount["source"], mount["target"], mount.get("read_only", False)
            else:
                source, target, *mode = str(mount).split(":")
                read_only = "ro" in mode
            if source.startswith("/"):
                assert Path(source).exists() and Path(source).is_relative_to(REPO), f"{name}: bind {source}"
                assert read_only, f"{name}: bind mount {source} -> {target} should be read-only"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    kafka = config["services"]["kafka"]
    data_targets = [str(m).split(":")[1] for m in kafka["volumes"]
                    if not str(m).startswith("/") and not str(m).startswith("tls:")]
    assert data_targets == [kafka["environment"]["KAFKA_LOG_DIRS"]], "Kafka's log dirs must be its named volume"


def test_clickhouse_server_initialised_from_clickhouse_init() -> None:
    svc = rendered(secret_markers())["services"]["clickhouse"]
    mounts = {str(m).split(":")[1]: str(m).split(":")[0] for m in svc["volumes"]}
    users = [src for dst, src in mounts.items() if dst.startswith("/etc/clickhouse-server/users.d/")]
    assert users == [str(REPO / "clickhouse_init" / "users.xml")]
    initdb = {dst: src for dst, src in mounts.items() if dst.startswith("/docker-entrypoint-initdb.d")}
    covered = set()
    for src in initdb.values():
        covered |= {p.name for p in Path(src).glob("*.sql")} if Path(src).is_dir() else {Path(src).name}
    wanted = {p.name for p in (REPO / "clickhouse_init").glob("*.sql")}
    assert wanted <= covered, f"not applied by clickhouse-server: {sorted(wanted - covered)}"
    assert svc["environment"]["CLICKHOUSE_SKIP_USER_SETUP"] == "1"  # users.xml alone defines the users
    from_env = {el.get("from_env") for el in ET.parse(REPO / "clickhouse_init" / "users.xml").iter() if el.get("from_env")}
    assert secrets_of(svc) == from_env


# ------------------------------------------------------------------ drift against the local stack

def test_same_services_as_the_local_stack(local_stack: Stack) -> None:
    services = rendered()["services"]
    expected = {name for local in local_stack.services for name in compose_name(local)}
    assert expected <= set(services), f"missing in docker-compose.yml: {sorted(expected - set(services))}"
    extra = set(services) - expected
    allowed = one_shots(services) | MONITORING
    assert MONITORING <= extra and extra <= allowed, \
        f"compose services with no local counterpart: {sorted(extra - allowed)}"


def test_same_dependencies_as_the_local_stack(local_stack: Stack) -> None:
    services = rendered()["services"]
    once = one_shots(services)

    def closure(name: str) -> set[str]:
        seen, todo = set(), list(services[name].get("depends_on") or {})
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(services[dep].get("depends_on") or {})
        return {dep for dep in seen if dep not in once}

    for local in local_stack.services:
        for name in compose_name(local):
            local_deps = {d for dep in DEPENDS_ON.get(local, ()) for d in compose_name(dep)}
            assert closure(name) == local_deps, f"{name}: compose waits for {sorted(closure(name))}, local for {sorted(local_deps)}"


def _port_map(services: dict) -> dict[str, list[tuple[str, int, int]]]:
    """Published ports of the services that have a local counterpart (not the compose-only monitoring)."""
    return {name: published(svc) for name, svc in services.items() if published(svc) and name not in MONITORING}


# the consumer runs CONSUMER_INSTANCES replicas in compose, which cannot share a host port:
# Prometheus reaches each inside the network (test_prometheus_scrapes_the_consumer_and_connects_jmx_exporter)
NOT_PUBLISHED = {"CONSUMER_METRICS_PORT"}


def test_same_published_ports_variables_and_defaults(local_stack: Stack) -> None:
    local_ports = {var: (svc.name, port) for svc in local_stack.services.values() for port, var in svc.ports()
                   if var not in NOT_PUBLISHED}
    assert not published(rendered()["services"]["consumer"]), "a replicated service cannot publish a host port"
    assert {var: env_example().get(var) for var in local_ports} == {var: str(port) for var, (_, port) in local_ports.items()}
    # move every port: each must follow its own variable, on the compose service of the same local service
    moved = {var: str(20000 + port) for var, (_, port) in local_ports.items()}
    for env, value_of in (({}, lambda var: local_ports[var][1]), (moved, lambda var: int(moved[var]))):
        ports = _port_map(rendered(env)["services"])
        all_published = sorted(p for entries in ports.values() for _, p, _ in entries)
        assert all_published == sorted(value_of(var) for var in local_ports), "published ports != the local stack's"
        for var, (local, _) in local_ports.items():
            hits = [(name, host_ip) for name, entries in ports.items() for host_ip, p, _ in entries if p == value_of(var)]
            assert len(hits) == 1 and hits[0][0] in compose_name(local), f"{var} is published by {hits}"
            assert hits[0][1] == "127.0.0.1", f"{var} is published on {hits[0][1]!r}, not loopback"


def _source_text(roots: list[str], skip: set[str] = frozenset()) -> str:
    chunks = []
    for root in roots:
        paths = [REPO / root] if (REPO / root).is_file() else sorted((REPO / root).rglob("*"))
        for path in paths:
            if str(path.relative_to(REPO)) in skip:
                continue
            if path.is_file() and path.suffix in SOURCE_SUFFIXES and not {"target", "logs", "dbt_packages"} & set(path.parts):
                chunks.append(path.read_text(errors="replace"))
    return "\n".join(chunks)


def test_each_container_gets_the_environment_its_code_reads(local_stack: Stack) -> None:
    """Every variable the local stack provides and a component's code reads is set in its container."""
    ctx = local_stack.ctx
    provided = set(client_environment(ctx.settings, ctx.secrets))
    provided |= set(local_stack.services["filler"].env()) - set(ctx.env)  # DB_USER, DB_PASSWORD
    services = rendered()["services"]
    # dbt/profiles.yml's variables: the dbt build sets them from the clickhouse_dwh connection, for
    # the dbt invocation only (bankcdc_ops.dbt), so no Airflow container holds them
    set_for_dbt = set(profile_variables("host", 8123, "user", "password"))
    for name, roots in CODE_OF.items():
        text = _source_text(roots, NOT_RUN_BY.get(name, set()))
        reads = {var for var in provided if re.search(rf"(?<![A-Za-z0-9_]){var}(?![A-Za-z0-9_])", text)}
        assert reads, f"no environment read found in {roots}: the scan is broken"
        if "dbt" in roots:
            reads -= set_for_dbt
        missing = reads - set(services[name].get("environment") or {})
        assert missing == set(), f"{name} runs {roots}, which read {sorted(missing)}, unset in its container"


def test_secrets_reach_only_the_containers_that_use_them(local_stack: Stack) -> None:
    services = rendered(secret_markers())["services"]
    holders = {name: secrets_of(svc) for name, svc in services.items()}
    used = set().union(*holders.values())
    assert used == set(ALL_SECRETS), f"secrets no container gets: {sorted(set(ALL_SECRETS) - used)}"
    # the monitoring: Grafana's admin password, to Grafana alone; Prometheus holds none
    assert [n for n, s in holders.items() if "GRAFANA_ADMIN_PASSWORD" in s] == ["grafana"]
    assert holders["grafana"] == {"GRAFANA_ADMIN_PASSWORD"} and holders["prometheus"] == set()
    assert [n for n, s in holders.items() if "POSTGRES_PASSWORD" in s] == ["postgres"]
    assert [n for n, s in holders.items() if "CLICKHOUSE_PASSWORD" in s] == ["clickhouse"]
    init_script = (REPO / "docker" / "postgres" / "10-bank-cdc.sh").read_text()
    assert holders["postgres"] == {"POSTGRES_PASSWORD"} | {n for n in SECRET_NAMES if f"${n}" in init_script}
    # the filler logs in as the local stack's filler does
    local_filler = local_stack.services["filler"].env()
    password_name = next(n for n, v in local_stack.ctx.secrets.items() if v == local_filler["DB_PASSWORD"])
    filler = services["filler"]["environment"]
    assert (filler["DB_USER"], filler["DB_PASSWORD"]) == (local_filler["DB_USER"], secret_markers()[password_name])
    assert holders["filler"] == {password_name}
    assert holders["consumer"] == {"CLICKHOUSE_LOADER_PASSWORD", "KAFKA_CONSUMER_PASSWORD"}
    # Connect: what its connectors read, its REST API's own password (its user file), its Kafka login
    assert holders["connect"] == {n for n in SECRET_NAMES if f"${{env:{n}}}" in _source_text(["debezium"])} \
        | {"CONNECT_REST_PASSWORD", "KAFKA_CONNECT_PASSWORD"}
    assert holders["connect-register"] == {"CONNECT_REST_PASSWORD"}
    # the admin principal is the set-up's alone (the broker's own login aside)
    assert [n for n, s in holders.items() if "KAFKA_ADMIN_PASSWORD" in s] == ["kafka", "kafka-setup"]
    assert holders["kafka-setup"] == {n for n in SECRET_NAMES if n.startswith("KAFKA_")}
    assert "AIRFLOW_ADMIN_PASSWORD" not in set().union(*(holders[f"airflow-{c}"] for c in COMPONENTS))


def test_airflow_connections_and_settings_match_the_local_stack(local_stack: Stack) -> None:
    ctx = local_stack.ctx
    local_conns = airflow_connections(ctx.settings, ctx.secrets)
    local_env = local_stack.services["airflow"].env()
    secret_values = set(ctx.secrets.values())
    # settings whose local value carries a secret must be set in every Airflow container
    secret_bearing = {k for k, v in local_env.items() if k.startswith("AIRFLOW__") and any(s in v for s in secret_values)}
    services = rendered()["services"]
    for component in COMPONENTS:
        env = services[f"airflow-{component}"]["environment"]
        assert set(local_conns) <= set(env), f"airflow-{component}: missing {sorted(set(local_conns) - set(env))}"
        assert secret_bearing <= set(env), f"airflow-{component}: missing {sorted(secret_bearing - set(env))}"
        for key in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__AUTH_MANAGER", "AIRFLOW__CORE__LOAD_EXAMPLES"):
            assert env[key] == local_env[key], key
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(":")[0] == ADMIN_USER
        for conn_var, local_json in local_conns.items():
            local_conn, conn = yaml.safe_load(local_json), yaml.safe_load(env[conn_var])
            assert (conn["conn_type"], conn.get("login"), conn.get("schema")) == \
                (local_conn["conn_type"], local_conn.get("login"), local_conn.get("schema")), conn_var
        user = re.search(r"://([^:]+):", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).group(1)
        assert user == re.search(r"://([^:]+):", local_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]).group(1)


def test_filler_seeds_like_the_local_stack() -> None:
    command = " ".join(rendered()["services"]["filler"]["command"])
    assert f"--backfill-days {SEED_DAYS} --txns-per-day {SEED_TXNS_PER_DAY} --if-empty" in command


def test_postgres_init_refuses_placeholder_passwords(tmp_path: Path) -> None:
    """`cp .env.example .env` without editing it must not initialise a database with change-me (nor
    tokenise card data with it)."""
    script = REPO / "docker" / "postgres" / "10-bank-cdc.sh"
    fake_psql = tmp_path / "psql"
    fake_psql.write_text("#!/bin/sh\necho psql-was-called\n")
    fake_psql.chmod(0o755)
    names = re.findall(r"\b([A-Z_]+_(?:PASSWORD|KEY))\b", script.read_text())
    assert "BANK_TOKEN_KEY" in names
    pgdata = tmp_path / "data"
    pgdata.mkdir()
    hba = pgdata / "pg_hba.conf"
    hba.write_text("local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\n"
                   "host all all all scram-sha-256\n")  # what the image's initdb and entrypoint write
    base = {"PATH": f"{tmp_path}:/usr/bin:/bin", "POSTGRES_USER": "postgres", "PGDATA": str(pgdata)}
    good = {name: f"pw-{name.lower()}" for name in names}
    ok = subprocess.run(["bash", str(script)], env={**base, **good}, capture_output=True, text=True)
    assert ok.returncode == 0 and "psql-was-called" in ok.stdout, ok.stderr
    assert hba.read_text().splitlines()[-2:] == ["hostssl all all all scram-sha-256", "hostnossl all all all reject"]
    for name in set(names):
        refused = subprocess.run(["bash", str(script)], env={**base, **good, name: PLACEHOLDER},
                                 capture_output=True, text=True)
        assert refused.returncode != 0 and "psql-was-called" not in refused.stdout, name
        assert name in refused.stderr


# ------------------------------------------------------------------ TLS where the network is crossed

SERVERS = {"postgres", "kafka", "clickhouse"}


def _mounts(svc: dict) -> dict[str, tuple[str, bool]]:
    """target -> (source, read-only) of a service's volumes, short or long syntax."""
    out = {}
    for mount in svc.get("volumes") or []:
        if isinstance(mount, dict):
            out[mount["target"]] = (mount["source"], bool(mount.get("read_only")))
        else:
            source, target, *mode = str(mount).split(":")
            out[target] = (source, "ro" in mode)
    return out


def test_every_server_speaks_tls_with_a_certificate_from_the_stacks_own_ca() -> None:
    services = rendered()["services"]
    certs = services["certs"]
    assert certs["command"][:3] == ["python", "-m", "bankcdc_stack.tls_certs"] and str(certs["restart"]) == "no"
    assert [name for name, svc in services.items() if any(s == "tlsca" for s, _ in _mounts(svc).values())] \
        == ["certs"], "the CA's key is mounted by the certs one-shot alone"
    for name, svc in services.items():
        tls = [(s, ro) for s, ro in _mounts(svc).values() if s == "tls"]
        if name in MONITORING:
            assert tls == [], f"{name} reaches no TLS server: it needs no certificate (nor the servers' keys)"
        elif name != "certs":
            assert tls and all(ro for _, ro in tls), f"{name} mounts the certificates read-only"
    for name in SERVERS:
        assert services[name]["depends_on"]["certs"]["condition"] == "service_completed_successfully", name
    postgres = " ".join(services["postgres"]["command"]) if isinstance(services["postgres"]["command"], list) \
        else services["postgres"]["command"]
    assert "ssl=on" in postgres and "ssl_cert_file=/certs/postgres.crt" in postgres
    hba = (REPO / "docker/postgres/10-bank-cdc.sh").read_text()
    assert "hostnossl all all all reject" in hba, "a TCP login without TLS is refused"
    start = (REPO / "docker/kafka/start.sh").read_text()
    listeners = re.search(r"^listener\.security\.protocol\.map=(.*)$", start, re.M).group(1)
    assert {p.split(":")[1] for p in listeners.split(",")} == {"SASL_SSL"} and "PLAINTEXT" not in start
    tls_xml = (REPO / "docker/clickhouse/tls.xml").read_text()
    assert '<http_port remove="1"/>' in tls_xml and "<https_port>8443</https_port>" in tls_xml
    assert [target for _, _, target in published(services["clickhouse"])] == [8443]


def test_every_client_verifies_the_server_against_the_ca() -> None:
    services = rendered()["services"]
    for name, svc in services.items():
        env = svc.get("environment") or {}
        if "DB_SSLMODE" in env:
            assert env["DB_SSLMODE"] == "verify-full" and env["PGSSLROOTCERT"] == "/certs/ca.crt", name
        if "KAFKA_BOOTSTRAP_SERVERS" in env:
            assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and env["KAFKA_SSL_CA_LOCATION"] == "/certs/ca.crt", name
        if "CLICKHOUSE_HOST" in env:
            assert (env["CLICKHOUSE_SECURE"], env["CLICKHOUSE_PORT"], env["CLICKHOUSE_CA_CERT"]) \
                == ("true", "8443", "/certs/ca.crt"), name
        if name.startswith("airflow-"):
            assert "sslmode=verify-full" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
            conns = {key: json.loads(value) for key, value in env.items() if key.startswith("AIRFLOW_CONN_")}
            assert conns["AIRFLOW_CONN_POSTGRES_BANK"]["extra"]["sslmode"] == "verify-full"
            for key in ("AIRFLOW_CONN_CLICKHOUSE_DWH", "AIRFLOW_CONN_CLICKHOUSE_RAW_LOADER"):
                assert conns[key]["port"] == 8443 and conns[key]["extra"]["secure"] is True, key
            assert conns["AIRFLOW_CONN_KAFKA_DEFAULT"]["extra"]["security.protocol"] == "SASL_SSL"
    connect = services["connect"]["environment"]
    for prefix in ("CONNECT_", "CONNECT_PRODUCER_", "CONNECT_CONSUMER_", "CONNECT_ADMIN_"):
        assert connect[f"{prefix}SECURITY_PROTOCOL"] == "SASL_SSL", prefix
        assert connect[f"{prefix}SSL_TRUSTSTORE_LOCATION"] == "/certs/ca.crt", prefix
    assert connect["DEBEZIUM_DB_SSLMODE"] == "verify-full"
    assert all(json.loads((REPO / "debezium" / f).read_text())["config"]["database.sslmode"]
               == "${env:DEBEZIUM_DB_SSLMODE}" for f in ("bank-dims.json", "bank-transactions.json"))


# ------------------------------------------------------------------ monitoring (compose only)

PROMETHEUS_CONFIG = REPO / "docker" / "prometheus" / "prometheus.yml"
CONNECT_DOCKERFILE = REPO / "docker" / "connect" / "Dockerfile"
JMX_RULES = REPO / "docker" / "connect" / "jmx-exporter.yml"
GRAFANA = REPO / "docker" / "grafana"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                "offset"}


def _binds(svc: dict) -> dict[str, Path]:
    """target -> repository path of a service's bind mounts (every one read-only)."""
    out = {}
    for target, (source, read_only) in _mounts(svc).items():
        if source.startswith("/"):
            assert read_only, f"bind mount {source} -> {target} should be read-only"
            out[target] = Path(source)
    return out


def _host_path(svc: dict, container_path: str) -> Path | None:
    """The repository file a path inside the container is, through the service's bind mounts."""
    for target, source in _binds(svc).items():
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / Path(container_path).relative_to(target)
    return None


def _javaagent(connect: dict) -> tuple[str, int, str]:
    """(jar, port, rules file) of the JMX exporter agent that connect's KAFKA_OPTS loads."""
    opts = connect["environment"]["KAFKA_OPTS"]
    agents = re.findall(r"-javaagent:(\S+?)=(?:([^:\s]+):)?(\d+):(\S+)", opts)
    assert len(agents) == 1, f"KAFKA_OPTS should load one -javaagent:JAR=PORT:RULES, not {opts!r}"
    jar, host, port, rules = agents[0]
    assert host in ("", "0.0.0.0"), f"the agent listens on {host} only: Prometheus, in another container, needs all"
    return jar, int(port), rules


@lru_cache(maxsize=None)
def _jmx_exporter_download() -> dict[str, str]:
    """What docker/connect/Dockerfile downloads: version, sha256, the jar's path in the image, its URL."""
    text = CONNECT_DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.M))
    version, sha256 = args["JMX_EXPORTER_VERSION"], args["JMX_EXPORTER_SHA256"]
    expanded = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], text)
    fetch = re.search(r"curl -fsSL -o (\S+)\s+(?:\\\s+)?(https://\S+)", expanded)
    assert fetch, "docker/connect/Dockerfile should fetch the agent with `curl -fsSL -o PATH URL`"
    path, url = fetch.groups()
    assert url == f"{MAVEN_CENTRAL}/io/prometheus/jmx/jmx_prometheus_javaagent/{version}/" \
                  f"jmx_prometheus_javaagent-{version}.jar", url
    assert re.fullmatch(r"[0-9a-f]{64}", sha256), "JMX_EXPORTER_SHA256 should be the jar's SHA-256"
    assert f'echo "{sha256}  {path}" | sha256sum -c -' in expanded, "the downloaded jar is not checked"
    return {"version": version, "sha256": sha256, "path": path, "url": url}


def _exported(rules: list[dict], line: str) -> tuple[str, dict[str, str]] | None:
    """(metric, labels) the JMX exporter makes of one `domain<key=value, ...><>attribute: value` line,
    as its agent does: the first rule whose pattern matches (wrapped in ^.*(?:...).*$) wins, `$n` in
    labels are its groups, and an empty label is dropped."""
    for rule in rules:
        match = re.fullmatch(rf"^.*(?:{rule['pattern']}).*$", line)
        if match:
            labels = {key: re.sub(r"\$(\d+)", lambda g: match.group(int(g.group(1))) or "", value)
                      for key, value in (rule.get("labels") or {}).items()}
            return rule["name"], {key: value for key, value in labels.items() if value}
    return None


def _included(patterns: list[str], line: str) -> bool:
    """Whether includeObjectNames (ObjectName patterns `domain:key=value,*`) let the line's MBean through."""
    domain, keys = re.match(r"([^<]+)<([^>]*)>", line).groups()
    props = dict(pair.split("=", 1) for pair in keys.split(", "))
    for pattern in patterns:
        want_domain, _, want_keys = pattern.partition(":")
        wanted = dict(pair.split("=", 1) for pair in want_keys.split(",") if pair != "*")
        if want_domain == domain and all(props.get(k) == v for k, v in wanted.items()) \
                and (want_keys.endswith("*") or set(props) == set(wanted)):
            return True
    return False


def _mbean_lines() -> list[tuple[str, str | None, dict[str, str]]]:
    """(exporter input, metric it must become or None, its labels) for the MBeans Kafka Connect 4.1 and
    Debezium 3.3 register for the connectors of debezium/*.json, keys in their registration order."""
    lines: list[tuple[str, str | None, dict[str, str]]] = []
    for path in sorted((REPO / "debezium").glob("*.json")):
        connector = json.loads(path.read_text())
        name, config = connector["name"], connector["config"]
        tags = [pair.split("=", 1) for pair in config.get("custom.metric.tags", "").split(",") if pair]
        server = f"server={config['topic.prefix']}" + "".join(f", {k}={v}" for k, v in tags)
        task, of_task = f"connector={name}, task=0", {"connector": name, "task": "0"}
        lines += [
            (f"kafka.connect<type=connector-metrics, connector={name}><>status: running",
             "kafka_connect_connector_status", {"connector": name, "status": "running"}),
            (f"kafka.connect<type=connector-metrics, connector={name}><>connector-class: "
             "io.debezium.connector.postgresql.PostgresConnector", None, {}),
            (f"kafka.connect<type=connector-task-metrics, {task}><>status: failed",
             "kafka_connect_task_status", {**of_task, "status": "failed"}),
            (f"kafka.connect<type=connect-worker-metrics, connector={name}><>connector-failed-task-count: 0.0",
             "kafka_connect_worker_connector_tasks", {"connector": name, "state": "failed"}),
            (f"kafka.connect<type=source-task-metrics, {task}><>source-record-poll-rate: 51.5",
             "kafka_connect_source_record_poll_rate", of_task),
            (f"kafka.connect<type=source-task-metrics, {task}><>source-record-write-rate: 50.5",
             "kafka_connect_source_record_write_rate", of_task),
            (f"debezium.postgres<type=connector-metrics, context=streaming, {server}><>LastEvent: x", None, {}),
        ]
        of_connector = {"server": config["topic.prefix"], "connector": name}
        for attribute, metric in (("MilliSecondsBehindSource", "milliseconds_behind_source"),
                                  ("QueueRemainingCapacity", "queue_remaining_capacity"),
                                  ("QueueTotalCapacity", "queue_total_capacity"),
                                  ("TotalNumberOfEventsSeen", "events_seen_total"),
                                  ("Connected", "connected")):
            lines.append((f"debezium.postgres<type=connector-metrics, context=streaming, {server}><>{attribute}: 1",
                          f"debezium_postgres_streaming_{metric}", of_connector))
    return lines


def _consumer_metric_names() -> set[str]:
    """The sample names the consumer's /metrics serves once it has loaded a batch (cdc_consumer.metrics)."""
    metrics = cdc_consumer.metrics.ConsumerMetrics()
    metrics.record_batch({"transaction": 2}, {"bank.bank.card": 1}, 0.1, int(time.time() * 1000))
    metrics.lag.labels("bank.bank.card", "0").set(3)
    metrics.tombstones.inc()
    metrics.set_waiting(None)
    return {sample.name for family in metrics.registry.collect() for sample in family.samples}


def _promql_metrics(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, keywords, labels, ranges or strings)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    return {m.group(1) for m in re.finditer(rf"(?<![\w$:.])({METRIC_NAME})(\s*\()?", text)
            if not m.group(2) and m.group(1) not in PROMQL_WORDS}


def _panels(dashboard: dict) -> list[dict]:
    return [p for top in dashboard["panels"] for p in [top, *top.get("panels", [])]]


def scrape_targets(job: dict) -> set[tuple[str, int]]:
    """(host, port) of a scrape job: its static targets, and the names its DNS discovery resolves
    (each address of a replicated service)."""
    found = {(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1]))
             for static in job.get("static_configs", []) for t in static["targets"]}
    for dns in job.get("dns_sd_configs", []):
        assert dns.get("type") == "A", f"{job['job_name']}: compose's DNS answers A records, not {dns.get('type')}"
        found |= {(name, int(dns["port"])) for name in dns["names"]}
    return found


def test_prometheus_scrapes_the_consumer_and_connects_jmx_exporter() -> None:
    services = rendered()["services"]
    prometheus = services["prometheus"]
    config_file = next(a.split("=", 1)[1] for a in prometheus["command"] if a.startswith("--config.file="))
    assert _host_path(prometheus, config_file) == PROMETHEUS_CONFIG
    targets = set()
    for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]:
        assert (job.get("metrics_path", "/metrics"), job.get("scheme", "http")) == ("/metrics", "http"), job
        targets |= {(job["job_name"], host, port) for host, port in scrape_targets(job)}
    consumer = services["consumer"]
    consumer_port = int(consumer["environment"]["CONSUMER_METRICS_PORT"])
    assert consumer_port and f"localhost:{consumer_port}/metrics" in " ".join(consumer["healthcheck"]["test"])
    _, agent_port, _ = _javaagent(services["connect"])
    assert {(host, port) for _, host, port in targets} == {("consumer", consumer_port), ("connect", agent_port)}, \
        f"Prometheus scrapes {sorted(targets)}"
    assert len({job for job, _, _ in targets}) == 2, "one job per target, so that `up{job=...}` tells them apart"
    # every replica: Prometheus resolves the service name to each replica's address
    assert consumer["deploy"]["replicas"] == 1 and rendered({"CONSUMER_INSTANCES": "3"})[
        "services"]["consumer"]["deploy"]["replicas"] == 3
    consumer_job = next(j for j in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
                        if ("consumer", consumer_port) in scrape_targets(j))
    assert consumer_job.get("dns_sd_configs") and not consumer_job.get("static_configs")
    # the agent's port is for Prometheus inside the network: not published, not Connect's REST port
    assert agent_port not in {t for _, _, t in published(services["connect"])} | {8083}


def test_connect_loads_the_jmx_exporter_agent_its_image_downloads() -> None:
    connect = rendered()["services"]["connect"]
    download = _jmx_exporter_download()
    jar, _, rules = _javaagent(connect)
    assert jar == download["path"], \
        f"KAFKA_OPTS loads {jar}, docker/connect/Dockerfile puts the agent at {download['path']}"
    assert _host_path(connect, rules) == JMX_RULES, f"the agent's rules {rules} are not docker/connect/jmx-exporter.yml"
    opts = connect["environment"]["KAFKA_OPTS"]
    assert "-Djava.security.auth.login.config=/bank-cdc/connect-rest-jaas.conf" in opts  # REST basic auth
    assert "-Duser.home=/bank-cdc/home" in opts  # pgjdbc's root.crt
    assert connect["entrypoint"][-1].rstrip().endswith("exec /docker-entrypoint.sh start")


def test_jmx_rules_export_the_connect_and_debezium_mbeans_of_our_connectors() -> None:
    config = yaml.safe_load(JMX_RULES.read_text())
    rules = config["rules"]
    for rule in rules:
        assert set(rule) <= {"pattern", "name", "value", "type", "labels", "help"}, rule
        assert re.fullmatch(METRIC_NAME, rule["name"]), \
            f"{rule['name']!r}: names are literal (the dashboard test reads them)"
        assert rule["type"] in ("GAUGE", "COUNTER"), rule["name"]
        # a counter keeps its name in the exposition only when it ends with _total
        assert (rule["type"] == "COUNTER") == rule["name"].endswith("_total"), rule["name"]
    for line, metric, labels in _mbean_lines():
        assert _included(config["includeObjectNames"], line), f"includeObjectNames skips {line}"
        got = _exported(rules, line)
        assert (got == (metric, labels)) if metric else got is None, f"{line} -> {got}, wanted {metric} {labels}"
    # without custom.metric.tags both connectors' Debezium MBeans (one topic.prefix) would share a name
    debezium = {tuple(sorted(labels.items())) for line, metric, labels in _mbean_lines()
                if metric == "debezium_postgres_streaming_milliseconds_behind_source"}
    assert len(debezium) == len(list((REPO / "debezium").glob("*.json"))) >= 2, debezium


def test_promql_metric_names_are_read_as_prometheus_does() -> None:
    assert _promql_metrics('sum by (le) (rate(a_b{job="x y", le=~"1|2"}[$__rate_interval])) / c:d or vector(0)') \
        == {"a_b", "c:d"}
    assert _promql_metrics("histogram_quantile(0.95, sum without (pod) (rate(x_bucket[5m]))) > bool 1") == {"x_bucket"}


def test_grafana_provisions_the_datasource_and_dashboards_on_disk() -> None:
    services = rendered()["services"]
    grafana, prometheus = services["grafana"], services["prometheus"]
    binds = _binds(grafana)
    assert binds["/etc/grafana/provisioning/datasources"] == GRAFANA / "provisioning" / "datasources"
    assert binds["/etc/grafana/provisioning/dashboards"] == GRAFANA / "provisioning" / "dashboards"
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    datasources = [ds for f in sorted((GRAFANA / "provisioning" / "datasources").glob("*.yml"))
                   for ds in yaml.safe_load(f.read_text())["datasources"]]
    assert [ds["type"] for ds in datasources] == ["prometheus"]
    url = urlparse(datasources[0]["url"])
    listen = next((a.split(":")[-1] for a in prometheus["command"] if a.startswith("--web.listen-address=")), "9090")
    assert (url.scheme, url.hostname, url.port) == ("http", "prometheus", int(listen))
    assert int(listen) in {target for _, _, target in published(prometheus)}
    assert f"localhost:{listen}/" in " ".join(prometheus["healthcheck"]["test"])
    providers = [p for f in sorted((GRAFANA / "provisioning" / "dashboards").glob("*.yml"))
                 for p in yaml.safe_load(f.read_text())["providers"]]
    assert providers, "no dashboard provider"
    for provider in providers:
        folder = _host_path(grafana, provider["options"]["path"])
        assert folder and folder.is_dir(), f"{provider['options']['path']} is no mounted folder of the repository"
        assert sorted(folder.glob("*.json")) == [GRAFANA / "dashboards" / "bank-cdc.json"]
    home = _host_path(grafana, grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home == GRAFANA / "dashboards" / "bank-cdc.json" and home.is_file()


def test_dashboard_queries_only_metrics_the_pipeline_exports() -> None:
    produced = _consumer_metric_names() | {rule["name"] for rule in yaml.safe_load(JMX_RULES.read_text())["rules"]}
    produced |= {"up"}  # Prometheus's own, per target
    datasource_uid = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
                                    )["datasources"][0]["uid"]
    dashboard = json.loads((GRAFANA / "dashboards" / "bank-cdc.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    panels = _panels(dashboard)
    assert len({p["id"] for p in panels}) == len(panels), "panel ids repeat"
    queried: set[str] = set()
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"{panel['title']}: no query"
        for ref in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            uid = ref["uid"]
            if uid.startswith("$"):  # a dashboard variable, for a Grafana of your own; ours by default
                variable = variables[uid.strip("${}")]
                assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
                uid = variable["current"]["value"]
            assert (ref["type"], uid) == ("prometheus", datasource_uid), f"{panel['title']}: {ref}"
        for target in panel["targets"]:
            names = _promql_metrics(target["expr"])
            assert names, f"{panel['title']}: {target['expr']!r} selects no metric"
            assert names <= produced, f"{panel['title']}: nothing exports {sorted(names - produced)}"
            queried |= names
    asked = {"cdc_rows_loaded_total", "cdc_partition_lag", "cdc_dead_letters_total", "cdc_batch_seconds_bucket",
             "debezium_postgres_streaming_milliseconds_behind_source", "kafka_connect_task_status"}
    assert asked <= queried, f"no panel shows {sorted(asked - queried)}"


def test_grafana_admin_password_comes_from_the_environment_only() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["grafana"]
    assert raw["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == \
        "${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD in .env}"
    assert env_example()["GRAFANA_ADMIN_PASSWORD"] == PLACEHOLDER
    grafana = rendered(secret_markers())["services"]["grafana"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == secret_markers()["GRAFANA_ADMIN_PASSWORD"]
    # no credential in what Grafana and Prometheus read from the repository
    for path in [*sorted(GRAFANA.rglob("*")), PROMETHEUS_CONFIG]:
        if path.is_file():
            found = re.findall(r"password|secureJsonData|basicAuth|bearer|api_?key", path.read_text(), re.I)
            assert found == [], f"{path.relative_to(REPO)}: {found}"
    # and Grafana does not create its admin with the .env.example placeholder
    command = [part.replace("$$", "$") for part in grafana["entrypoint"]]
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for value in ("", PLACEHOLDER):
        refused = subprocess.run(command, env={**base, "GF_SECURITY_ADMIN_PASSWORD": value},
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode == 1 and "GRAFANA_ADMIN_PASSWORD" in refused.stderr, (value, refused.stderr)
    started = subprocess.run(command, env={**base, "GF_SECURITY_ADMIN_PASSWORD": "a-real-one"},
                             capture_output=True, text=True, timeout=30)
    assert "GRAFANA_ADMIN_PASSWORD" not in started.stderr and "/run.sh" in started.stderr, started.stderr


def test_monitoring_ports_follow_their_own_variables_on_loopback() -> None:
    wanted = {"prometheus": ("PROMETHEUS_PORT", 9090), "grafana": ("GRAFANA_PORT", 3000)}
    assert {var: env_example().get(var) for var, _ in wanted.values()} == {var: str(p) for var, p in wanted.values()}
    for env, shift in (({}, 0), ({var: str(20000 + port) for var, port in wanted.values()}, 20000)):
        services = rendered(env)["services"]
        for name, (_, port) in wanted.items():
            assert published(services[name]) == [("127.0.0.1", port + shift, port)], name
        every = [p for svc in services.values() for _, p, _ in published(svc)]
        assert len(every) == len(set(every)), f"two services publish one port: {sorted(every)}"


def test_consumer_serves_metrics_where_prometheus_scrapes(tmp_path: Path) -> None:
    """The consumer's compose settings listen on every interface, at the port Prometheus scrapes."""
    env = {**rendered(secret_markers())["services"]["consumer"]["environment"]}
    ca = tmp_path / "ca.crt"
    ca.write_text("")  # the settings check that the CA file exists; nothing connects here
    env.update({"KAFKA_SSL_CA_LOCATION": str(ca), "CLICKHOUSE_CA_CERT": str(ca)})
    settings = ConsumerSettings.from_env(env)
    scraped = {port for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
               for host, port in scrape_targets(job) if host == "consumer"}
    assert [settings.metrics_port] == sorted(scraped)
    assert settings.metrics_host == "0.0.0.0", f"/metrics listens on {settings.metrics_host} only, out of reach"
