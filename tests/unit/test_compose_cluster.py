"""docker-compose.cluster.yml over docker-compose.yml, as a real Compose parser merges them.

Debian's `docker-compose` (1.29) renders `-f docker-compose.yml -f docker-compose.cluster.yml` with
.env.example, as tests/unit/test_compose.py does for the single-node file. What is checked is what
would fail at `up` or, worse, run wrongly: the nodes of each part agreeing with each other (the
override repeats what docker-compose.yml's anchors give the first node), the ClickHouse and Keeper
XML agreeing with the services that mount it, the cluster's DDL coming from the clickhouse-schema
one-shot and not from the single-node init scripts, the Kafka settings that docker/kafka/start.sh
really writes, Celery's broker and workers, the certificates naming every new node, and secrets.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from test_compose import (
    ALL_SECRETS,
    CLUSTER_FILE,
    COMPOSE_FILE,
    ENV_EXAMPLE,
    PLACEHOLDER,
    REPO,
    _mounts,
    _real_secret_values,
    _strings,
    compose_binary,
    env_example,
    one_shots,
    published,
    run_config,
)
from test_compose import _rendered as _compose_rendered
from test_compose import rendered as compose_rendered
from test_tls_certs import _handshake

from bankcdc_stack import tls_certs
from bankcdc_stack.clickhouse_ddl import client_kwargs_from_env

CLUSTER_DIR = REPO / "docker" / "cluster" / "clickhouse"
CLUSTER_XML = CLUSTER_DIR / "cluster.xml"
KEEPER_XML = CLUSTER_DIR / "keeper_config.xml"
USERS_CLUSTER_XML = CLUSTER_DIR / "users-cluster.xml"
INITDB = CLUSTER_DIR / "initdb"
TLS_XML = REPO / "docker" / "clickhouse" / "tls.xml"
START_SH = REPO / "docker" / "kafka" / "start.sh"
CLUSTER_SECRETS = ("CLICKHOUSE_INTERSERVER_SECRET", "CLICKHOUSE_KEEPER_PASSWORD", "REDIS_PASSWORD")
EVERY_SECRET = (*ALL_SECRETS, *CLUSTER_SECRETS)
REPLICAS = ("clickhouse", "clickhouse-2")
KEEPERS = ("clickhouse-keeper-1", "clickhouse-keeper-2", "clickhouse-keeper-3")
BROKERS = ("kafka", "kafka-2", "kafka-3")
WORKERS = ("connect", "connect-2")
# what the entrypoint of clickhouse-server runs from /docker-entrypoint-initdb.d
INITDB_RUNS = (".sql", ".sh", ".sql.gz")
# per-node settings: everything else a new node has must be what the first one has
NODE_KEYS = {"clickhouse": {"CLICKHOUSE_REPLICA", "CLICKHOUSE_INTERSERVER_HOST"},
             "kafka": {"KAFKA_NODE_ID", "KAFKA_ADVERTISED_HOST", "KAFKA_HOST_PORT"},
             "connect": {"ADVERTISED_HOST_NAME"}}


FILES = (COMPOSE_FILE, CLUSTER_FILE)


def run_cluster_config(env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`docker-compose config` of both files, with .env.example and a clean environment (plus `env`)."""
    return run_config(env, FILES)


def rendered(env: dict[str, str] | None = None) -> dict:
    return compose_rendered(env, FILES)


def markers() -> dict[str, str]:
    return {name: f"__{name}__" for name in EVERY_SECRET}


def services(env: dict[str, str] | None = None) -> dict:
    return rendered(env)["services"]


def secrets_of(service: dict) -> set[str]:
    text = yaml.safe_dump(service.get("environment") or {})
    return {name for name, marker in markers().items() if marker in text}


def _xml(path: Path) -> ET.Element:
    return ET.parse(path).getroot()


def _binds(svc: dict) -> dict[str, Path]:
    return {target: Path(source) for target, (source, _) in _mounts(svc).items() if source.startswith("/")}


def _from_env(root: ET.Element) -> set[str]:
    return {el.get("from_env") for el in root.iter() if el.get("from_env")}


def _host_ports(svc: dict) -> dict[int, int]:
    """container port -> host port of a service's published ports."""
    return {target: port for _, port, target in published(svc)}


# ------------------------------------------------------------------ the file itself

def test_the_override_renders_and_adds_every_node() -> None:
    names = set(services())
    single = set(yaml.safe_load(COMPOSE_FILE.read_text())["services"])
    assert single <= names, "the override must keep every service of docker-compose.yml"
    assert {*REPLICAS, *KEEPERS, *BROKERS, *WORKERS, "clickhouse-schema", "redis", "airflow-worker"} <= names
    header = CLUSTER_FILE.read_text().split("\n\n", 1)[0]
    assert "docker compose -f docker-compose.yml -f docker-compose.cluster.yml up -d" in header


def test_cluster_passwords_are_required_and_placeholders_in_env_example() -> None:
    text = "\n".join(_strings(yaml.safe_load(CLUSTER_FILE.read_text())))
    for name in EVERY_SECRET:
        uses = re.findall(rf"\$\{{{name}([^}}]*)\}}", text)
        assert all(use == f":?set {name} in .env" for use in uses), f"{name} has a default or no error: {uses}"
    for name in CLUSTER_SECRETS:
        assert re.search(rf"\$\{{{name}:\?", text), f"{name} is not used by docker-compose.cluster.yml"
        assert env_example().get(name) == PLACEHOLDER, f".env.example should hold {name}={PLACEHOLDER}"
        result = run_cluster_config({name: ""})
        assert result.returncode != 0 and f"set {name} in .env" in result.stderr, result.stderr[-500:]


def test_no_credential_is_written_in_the_override() -> None:
    """Every value that carries a credential takes it from a variable: `${NAME...}` for compose, or
    `$$NAME` for the container's shell."""
    def from_variable(value: str) -> bool:
        return value.startswith("${") or value.startswith("$$")

    def walk(node, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str):
            if re.search(r"(PASSWORD|SECRET|IDENTITY|_KEY)$", key):
                assert "${" in node or "$$" in node, f"{key}: a literal credential"
            for pattern in (r'"password": "([^"]*)"', r'password="([^"]*)"', r"://[^:/@\s]*:(\$\{[^}]*\}|[^@\s]+)@",
                            r"--requirepass\s+(\S+)"):
                for found in re.findall(pattern, node):
                    assert from_variable(found.strip('"')), f"{key}: credential {found!r} is written in the file"

    walk(yaml.safe_load(CLUSTER_FILE.read_text()))
    for path in (CLUSTER_XML, KEEPER_XML, USERS_CLUSTER_XML):
        for el in _xml(path).iter():
            if re.search(r"password|secret|identity", el.tag, re.I):
                assert el.get("from_env") and not (el.text or "").strip(), f"{path.name}: <{el.tag}> is written"


def test_secrets_reach_only_the_containers_that_use_them() -> None:
    holders = {name: secrets_of(svc) for name, svc in services(markers()).items()}
    owners = {secret: {name for name, held in holders.items() if secret in held} for secret in CLUSTER_SECRETS}
    assert owners["CLICKHOUSE_INTERSERVER_SECRET"] == set(REPLICAS)
    assert owners["CLICKHOUSE_KEEPER_PASSWORD"] == set(REPLICAS)
    assert owners["REDIS_PASSWORD"] == {"redis", "airflow-scheduler", "airflow-worker"}
    admin = {name for name, held in holders.items() if "CLICKHOUSE_PASSWORD" in held}
    assert admin == {*REPLICAS, "clickhouse-schema"}, "ClickHouse's admin password: the servers and the DDL one-shot"
    assert holders["clickhouse-schema"] == {"CLICKHOUSE_PASSWORD"}
    assert holders["clickhouse-2"] == holders["clickhouse"] and holders["connect-2"] == holders["connect"]
    assert all(holders[k] == set() for k in KEEPERS)
    kafka_admin = {name for name, held in holders.items() if "KAFKA_ADMIN_PASSWORD" in held}
    assert kafka_admin == {*BROKERS, "kafka-setup"}
    assert "AIRFLOW_ADMIN_PASSWORD" not in holders["airflow-worker"]


def test_rendered_cluster_holds_no_real_secret() -> None:
    output, _ = _compose_rendered((), FILES)
    leaked = sorted(where for value, where in _real_secret_values().items() if value in output)
    assert leaked == [], f"a real secret reaches `docker-compose config` output: {leaked}"


def test_images_are_pinned_and_new_nodes_run_the_first_ones_image() -> None:
    svcs = services()
    for name, svc in svcs.items():
        repo_part, _, tag = svc["image"].rpartition(":")
        assert repo_part and re.match(r"v?\d+\.\d+", tag), f"{name}: image {svc['image']!r} is not pinned to a release"
        if svc["image"].startswith("bank-cdc:"):
            assert svc["image"] == svcs["consumer"]["image"] and svc["build"] == svcs["consumer"]["build"], name
            assert svc["command"][0] in ("airflow", "python", "bash"), (name, svc["command"])
    server_tag = svcs["clickhouse"]["image"].rpartition(":")[2]
    assert {svcs[k]["image"] for k in KEEPERS} == {f"clickhouse/clickhouse-keeper:{server_tag}"}
    assert svcs["clickhouse-2"]["image"] == svcs["clickhouse"]["image"]
    assert {svcs[b]["image"] for b in BROKERS} == {svcs["kafka"]["image"]}
    assert svcs["connect-2"]["image"] == svcs["connect"]["image"] and svcs["connect-2"]["build"] == svcs["connect"]["build"]


def test_health_checks_and_dependency_conditions() -> None:
    svcs = services()
    once = one_shots(svcs)
    nodes = {*REPLICAS, *KEEPERS, *BROKERS, *WORKERS, "redis"}
    for name, svc in svcs.items():
        if (published(svc) or name.startswith("airflow-") or name in nodes) and name not in once:
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dep, spec in (svc.get("depends_on") or {}).items():
            wanted = "service_completed_successfully" if dep in once else "service_healthy"
            assert spec.get("condition") == wanted, f"{name} -> {dep}: {spec}"


def test_mounts_are_read_only_binds_and_each_node_keeps_its_own_data() -> None:
    config = rendered()
    declared = set(config.get("volumes") or {})
    data = {}
    for name, svc in config["services"].items():
        for target, (source, read_only) in _mounts(svc).items():
            if source.startswith("/"):
                assert Path(source).exists() and Path(source).is_relative_to(REPO), f"{name}: bind {source}"
                assert read_only, f"{name}: bind mount {source} -> {target} should be read-only"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                if not read_only and source not in ("tls", "tlsca", "airflowlogs", "airflowauth"):
                    data.setdefault(source, set()).add(name)
    for node in (*REPLICAS, *KEEPERS, *BROKERS, "redis"):
        own = [volume for volume, users in data.items() if node in users]
        assert len(own) == 1 and data[own[0]] == {node}, f"{node} should have one data volume of its own: {own}"


def test_published_ports_are_loopback_unique_and_follow_their_variables() -> None:
    new_ports = {"KAFKA_2_PORT": ("kafka-2", 29092), "KAFKA_3_PORT": ("kafka-3", 29092),
                 "CLICKHOUSE_2_PORT": ("clickhouse-2", 8443)}
    defaults = env_example()
    for var in new_ports:
        assert re.search(rf"\$\{{{var}:-{defaults[var]}\}}", CLUSTER_FILE.read_text()), \
            f"{var}: the file's default differs from .env.example's {defaults.get(var)}"
    for env, shift in (({}, 0), ({var: str(20000 + int(defaults[var])) for var in new_ports}, 20000)):
        svcs = services(env)
        every = [(host, port) for svc in svcs.values() for host, port, _ in published(svc)]
        assert all(host == "127.0.0.1" for host, _ in every), every
        assert len(every) == len(set(every)), f"two services publish one port: {sorted(every)}"
        for var, (name, target) in new_ports.items():
            assert _host_ports(svcs[name]) == {target: int(defaults[var]) + shift}, var
        for broker in BROKERS:  # what a client on the host is told to connect to
            assert int(svcs[broker]["environment"]["KAFKA_HOST_PORT"]) == _host_ports(svcs[broker])[29092], broker
    # nothing between the nodes is published: Keeper, Redis and the second worker not at all
    svcs = services()
    for name in (*KEEPERS, "redis", "connect-2", "clickhouse-schema", "airflow-worker"):
        assert published(svcs[name]) == [], name
    assert all(sorted(_host_ports(svcs[r])) == [8443] for r in REPLICAS)


# ------------------------------------------------------------------ ClickHouse: replicas, Keepers, their XML

def test_replicas_mount_the_cluster_config_and_differ_only_in_their_names() -> None:
    svcs = services(markers())
    for name in REPLICAS:
        binds = _binds(svcs[name])
        assert binds["/etc/clickhouse-server/config.d/bank-cdc-cluster.xml"] == CLUSTER_XML, name
        assert binds["/etc/clickhouse-server/config.d/bank-cdc-tls.xml"] == TLS_XML, name
        assert binds["/etc/clickhouse-server/users.d/bank-cdc-users.xml"] == REPO / "clickhouse_init" / "users.xml"
        assert binds["/etc/clickhouse-server/users.d/bank-cdc-cluster-grants.xml"] == USERS_CLUSTER_XML, name
        env = svcs[name]["environment"]
        assert env["CLICKHOUSE_REPLICA"] == env["CLICKHOUSE_INTERSERVER_HOST"] == name
        assert _from_env(_xml(CLUSTER_XML)) <= set(env), f"{name}: cluster.xml reads variables it is not given"
        assert f"https://{name}:8443/" in svcs[name]["healthcheck"]["test"][-1], f"{name}'s health check asks another"
    one, two = (svcs[name] for name in REPLICAS)
    strip = NODE_KEYS["clickhouse"]
    assert {k: v for k, v in one["environment"].items() if k not in strip} == \
        {k: v for k, v in two["environment"].items() if k not in strip}
    assert {t: s for t, (s, _) in _mounts(one).items() if t != "/var/lib/clickhouse"} == \
        {t: s for t, (s, _) in _mounts(two).items() if t != "/var/lib/clickhouse"}
    assert one["ulimits"] == two["ulimits"]


def test_cluster_xml_describes_the_replicas_and_keepers_compose_runs() -> None:
    root = _xml(CLUSTER_XML)
    secure_port = int(root.findtext("tcp_port_secure"))
    remote = root.find("remote_servers")
    assert remote.get("replace"), "the default config's test clusters would stay"
    clusters = list(remote)
    assert [c.tag for c in clusters] == ["bank"]
    bank = clusters[0]
    assert bank.find("secret").get("from_env") == "CLICKHOUSE_INTERSERVER_SECRET"
    shards = bank.findall("shard")
    assert len(shards) == 1 and shards[0].findtext("internal_replication") == "true"
    replicas = shards[0].findall("replica")
    assert [r.findtext("host") for r in replicas] == list(REPLICAS)
    assert all(int(r.findtext("port")) == secure_port and r.findtext("secure") == "1" for r in replicas)
    assert root.find("interserver_http_port").get("remove") and root.findtext("interserver_https_port")
    assert root.find("interserver_https_host").get("from_env") == "CLICKHOUSE_INTERSERVER_HOST"
    macros = root.find("macros")
    assert (macros.findtext("shard"), macros.findtext("cluster")) == ("01", "bank")
    assert macros.find("replica").get("from_env") == "CLICKHOUSE_REPLICA"
    keeper = _xml(KEEPER_XML).find("keeper_server")
    nodes = root.find("zookeeper").findall("node")
    assert [n.findtext("host") for n in nodes] == list(KEEPERS)
    assert {(int(n.findtext("port")), n.findtext("secure")) for n in nodes} == {(int(keeper.findtext("tcp_port_secure")), "1")}
    assert root.find("zookeeper/identity").get("from_env") == "CLICKHOUSE_KEEPER_IDENTITY"
    identity = services(markers())["clickhouse"]["environment"]["CLICKHOUSE_KEEPER_IDENTITY"]
    assert re.fullmatch(r"[a-z]+:__CLICKHOUSE_KEEPER_PASSWORD__", identity), "user:password, the password from .env"
    client = root.find("openSSL/client")
    assert client.findtext("caConfig") == "/certs/ca.crt" and client.findtext("loadDefaultCAFile") == "false"
    assert client.findtext("verificationMode") in ("relaxed", "strict")
    # the clients' side stays as docker/clickhouse/tls.xml has it: HTTPS only
    assert root.find("http_port") is None and root.find("https_port") is None


def test_keepers_form_one_quorum_of_three() -> None:
    svcs = services()
    root = _xml(KEEPER_XML)
    keeper = root.find("keeper_server")
    assert keeper.find("server_id").get("from_env") == "KEEPER_SERVER_ID"
    assert keeper.find("tcp_port") is None, "a plain client port next to the TLS one"
    raft = keeper.find("raft_configuration")
    assert raft.findtext("secure") == "true"
    peers = {int(s.findtext("id")): (s.findtext("hostname"), int(s.findtext("port"))) for s in raft.findall("server")}
    assert len(peers) == 3 and len({port for _, port in peers.values()}) == 1
    ids = {}
    for name in KEEPERS:
        svc = svcs[name]
        assert _binds(svc)["/etc/clickhouse-keeper/keeper_config.xml"] == KEEPER_XML
        ids[int(svc["environment"]["KEEPER_SERVER_ID"])] = name
        data = [t for t, (s, ro) in _mounts(svc).items() if not s.startswith("/") and not ro]
        for path in ("log_storage_path", "snapshot_storage_path"):
            assert any(keeper.findtext(path).startswith(t.rstrip("/") + "/") for t in data), f"{name}: {path} not on its volume"
        port = int(keeper.findtext("tcp_port_secure"))
        assert f"/dev/tcp/127.0.0.1/{port}" in " ".join(svc["healthcheck"]["test"]), name
    assert ids == {i: host for i, (host, _) in peers.items()}, f"server ids {ids} vs raft_configuration {peers}"
    assert root.findtext("listen_host") in ("0.0.0.0", "::"), "the default listens on loopback only"


def test_transformer_gets_the_cluster_grant_next_to_its_own() -> None:
    """users-cluster.xml is merged over users.xml: a <query> with the same identifier (tag and
    attributes) as one of users.xml's would replace that grant instead of adding to it."""
    users = _xml(REPO / "clickhouse_init" / "users.xml")
    base = {tuple(sorted(q.attrib.items())) for q in users.find("users/transformer/grants")}
    added = list(_xml(USERS_CLUSTER_XML).find("users/transformer/grants"))
    assert [q.text for q in added] == ["GRANT CLUSTER ON *.*"]
    assert all(q.attrib and tuple(sorted(q.attrib.items())) not in base for q in added)


def test_the_cluster_ddl_comes_from_the_schema_one_shot_not_from_initdb() -> None:
    svcs = services(markers())
    for name in REPLICAS:
        mounts = _mounts(svcs[name])
        assert mounts["/docker-entrypoint-initdb.d"][0] == str(INITDB), name
        assert not any(s == str(REPO / "clickhouse_init") for s, _ in mounts.values()), f"{name} mounts clickhouse_init/"
    inside = [p.name for p in INITDB.iterdir()]
    assert inside and not [n for n in inside if n.endswith(INITDB_RUNS)], f"the entrypoint would run {inside}"
    schema = svcs["clickhouse-schema"]
    assert str(schema["restart"]) == "no" and "clickhouse-schema" in one_shots(svcs)
    cluster = _xml(CLUSTER_XML).find("remote_servers")[0].tag
    assert schema["command"] == ["python", "-m", "bankcdc_stack.clickhouse_ddl", "apply", "--cluster", cluster]
    env = schema["environment"]
    assert env["CLICKHOUSE_HOST"] in REPLICAS and env["CLICKHOUSE_PASSWORD"] == markers()["CLICKHOUSE_PASSWORD"]
    consumer = svcs["consumer"]["environment"]
    assert {k: env[k] for k in ("CLICKHOUSE_PORT", "CLICKHOUSE_SECURE", "CLICKHOUSE_CA_CERT")} == \
        {k: consumer[k] for k in ("CLICKHOUSE_PORT", "CLICKHOUSE_SECURE", "CLICKHOUSE_CA_CERT")}
    assert _mounts(schema)["/certs"] == ("tls", True)
    deps = schema["depends_on"]
    assert {d: deps[d]["condition"] for d in (*REPLICAS, *KEEPERS)} == \
        dict.fromkeys((*REPLICAS, *KEEPERS), "service_healthy")
    writers = ["consumer", *(n for n in svcs if n.startswith("airflow-") and n != "airflow-init")]
    for name in writers:
        assert svcs[name]["depends_on"].get("clickhouse-schema", {}).get("condition") == \
            "service_completed_successfully", f"{name} may write ClickHouse before its tables exist"
    kwargs = client_kwargs_from_env(env)
    assert (kwargs["host"], kwargs["port"], kwargs["secure"], kwargs["username"]) == \
        (env["CLICKHOUSE_HOST"], 8443, True, "default")


# ------------------------------------------------------------------ Kafka: three KRaft nodes

def _voters(text: str) -> dict[int, tuple[str, int]]:
    out = {}
    for voter in text.split(","):
        node, _, address = voter.partition("@")
        host, _, port = address.rpartition(":")
        out[int(node)] = (host, int(port))
    return out


def _start_sh_properties(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """docker/kafka/start.sh as far as it writes the broker's properties, into a temporary file."""
    script = START_SH.read_text()
    head, marker, _ = script.partition("# what the health check logs in with")
    original = "config=/opt/kafka/config/bank-cdc.properties"
    assert marker and original in head, "start.sh changed shape: update this test's cut"
    tls = tmp_path / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    for name in ("kafka.pem", "ca.crt"):
        (tls / name).write_text("")
    head = head.replace(original, 'config="$BANKCDC_TEST_PROPERTIES"')
    out = tmp_path / "broker.properties"
    return subprocess.run(["bash", "-c", head],
                          env={"PATH": "/usr/bin:/bin", **env, "KAFKA_TLS_DIR": str(tls),
                               "BANKCDC_TEST_PROPERTIES": str(out)},
                          capture_output=True, text=True, timeout=30)


def _properties(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_three_brokers_one_quorum_three_copies(tmp_path: Path) -> None:
    svcs = services(markers())
    envs = {b: svcs[b]["environment"] for b in BROKERS}
    ids = {int(env["KAFKA_NODE_ID"]): b for b, env in envs.items()}
    assert len(ids) == 3, f"node ids repeat: {ids}"
    voter_texts = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs.values()}
    assert len(voter_texts) == 1, "every node must name the same voters"
    voters = _voters(voter_texts.pop())
    assert {i: host for i, (host, _) in voters.items()} == ids, f"voters {voters} vs nodes {ids}"
    assert {env["KAFKA_ADVERTISED_HOST"] for env in envs.values()} == set(BROKERS)
    assert all(env["KAFKA_ADVERTISED_HOST"] == b for b, env in envs.items())
    for b in BROKERS:
        assert svcs[b]["entrypoint"] == svcs["kafka"]["entrypoint"] and svcs[b]["healthcheck"] == svcs["kafka"]["healthcheck"]
        assert _binds(svcs[b])["/bank-cdc/kafka-start.sh"] == START_SH
        strip = NODE_KEYS["kafka"]
        assert {k: v for k, v in envs[b].items() if k not in strip} == \
            {k: v for k, v in envs["kafka"].items() if k not in strip}, f"{b} differs from kafka"
    for b, env in envs.items():
        result = _start_sh_properties(env, tmp_path / b)
        assert result.returncode == 0, result.stderr
        props = _properties(tmp_path / b / "broker.properties")
        assert props["node.id"] == env["KAFKA_NODE_ID"] and _voters(props["controller.quorum.voters"]) == voters
        assert f"SASL_SSL://{b}:9092" in props["advertised.listeners"].split(",")
        assert f"HOST://127.0.0.1:{env['KAFKA_HOST_PORT']}" in props["advertised.listeners"].split(",")
        for key in ("default.replication.factor", "offsets.topic.replication.factor",
                    "transaction.state.log.replication.factor", "share.coordinator.state.topic.replication.factor"):
            assert props[key] == "3", (b, key)
        for key in ("min.insync.replicas", "transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr"):
            assert props[key] == "2", (b, key)
        assert int(props["min.insync.replicas"]) < int(props["default.replication.factor"]) <= len(voters)


def test_start_sh_still_writes_the_single_node_of_docker_compose_yml(tmp_path: Path) -> None:
    result = subprocess.run([compose_binary(), "-f", str(COMPOSE_FILE), "--env-file", str(ENV_EXAMPLE), "config"],
                            cwd=REPO, env={"PATH": os.environ.get("PATH", ""), "KAFKA_ADMIN_PASSWORD": "pw-admin"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    env = yaml.safe_load(result.stdout)["services"]["kafka"]["environment"]
    assert not {"KAFKA_NODE_ID", "KAFKA_CONTROLLER_QUORUM_VOTERS", "KAFKA_REPLICATION_FACTOR"} & set(env)
    run = _start_sh_properties(env, tmp_path)
    assert run.returncode == 0, run.stderr
    props = _properties(tmp_path / "broker.properties")
    assert (props["node.id"], props["controller.quorum.voters"]) == ("1", "1@kafka:9093")
    assert props["advertised.listeners"] == "SASL_SSL://kafka:9092,HOST://127.0.0.1:9092"
    assert {v for k, v in props.items() if k.endswith((".replication.factor", "min.isr", "min.insync.replicas"))} == {"1"}


@pytest.mark.parametrize("change, complaint", [
    ({"KAFKA_MIN_INSYNC_REPLICAS": "4"}, "exceeds"),
    ({"KAFKA_NODE_ID": "4"}, "not among"),
    ({"KAFKA_REPLICATION_FACTOR": "three"}, "positive integer"),
])
def test_start_sh_refuses_settings_no_cluster_could_run(tmp_path: Path, change: dict, complaint: str) -> None:
    env = {**services(markers())["kafka-2"]["environment"], **change}
    result = _start_sh_properties(env, tmp_path)
    assert result.returncode == 1 and complaint in result.stderr, result.stderr
    assert not (tmp_path / "broker.properties").exists()


def test_every_kafka_client_bootstraps_from_the_three_brokers() -> None:
    svcs = services()
    wanted = {f"{svcs[b]['environment']['KAFKA_ADVERTISED_HOST']}:9092" for b in BROKERS}
    seen = 0
    for name, svc in svcs.items():
        env = svc.get("environment") or {}
        for key in ("KAFKA_BOOTSTRAP_SERVERS", "BOOTSTRAP_SERVERS"):
            if key in env:
                seen += 1
                assert set(env[key].split(",")) == wanted, f"{name}: {key}={env[key]}"
        if "AIRFLOW_CONN_KAFKA_DEFAULT" in env:
            extra = json.loads(env["AIRFLOW_CONN_KAFKA_DEFAULT"])["extra"]
            assert set(extra["bootstrap.servers"].split(",")) == wanted, name
    assert seen >= len(WORKERS) + 3, "no client found: the scan is broken"


def test_two_connect_workers_share_one_group() -> None:
    svcs = services(markers())
    one, two = (svcs[w] for w in WORKERS)
    for name in WORKERS:
        assert svcs[name]["environment"]["ADVERTISED_HOST_NAME"] == name
    strip = NODE_KEYS["connect"]
    assert {k: v for k, v in one["environment"].items() if k not in strip} == \
        {k: v for k, v in two["environment"].items() if k not in strip}
    for key in ("entrypoint", "healthcheck"):
        assert one[key] == two[key], key
    assert sorted(one["volumes"]) == sorted(two["volumes"])
    env = one["environment"]
    assert env["GROUP_ID"] == two["environment"]["GROUP_ID"]
    min_isr = int(svcs["kafka"]["environment"]["KAFKA_MIN_INSYNC_REPLICAS"])
    for kind in ("CONFIG", "OFFSET", "STATUS"):
        factor = int(env[f"CONNECT_{kind}_STORAGE_REPLICATION_FACTOR"])
        assert min_isr < factor <= len(BROKERS), f"{kind} topic: factor {factor}"
    assert svcs["connect-register"]["depends_on"]["connect-2"]["condition"] == "service_healthy"


def test_connectors_create_their_topics_with_the_clusters_replication_factor() -> None:
    kafka = services()["kafka"]["environment"]
    for path in sorted((REPO / "debezium").glob("*.json")):
        config = json.loads(path.read_text())["config"]
        factors = {k: v for k, v in config.items() if k.startswith("topic.creation.") and k.endswith(".replication.factor")}
        assert factors, path.name
        for key, value in factors.items():
            assert value in ("-1", kafka["KAFKA_REPLICATION_FACTOR"]), f"{path.name}: {key}={value}"


# ------------------------------------------------------------------ Airflow: Celery and Redis

def _redis_args(svc: dict, tmp_path: Path, password: str) -> subprocess.CompletedProcess:
    """Run redis's entrypoint script with a stand-in for the image's docker-entrypoint.sh."""
    fake = tmp_path / "docker-entrypoint.sh"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    command = [part.replace("$$", "$") for part in svc["entrypoint"]]
    return subprocess.run(command, env={"PATH": f"{tmp_path}:/usr/bin:/bin", "REDIS_PASSWORD": password},
                          capture_output=True, text=True, timeout=30)


def test_redis_serves_tls_with_a_password_and_refuses_the_placeholder(tmp_path: Path) -> None:
    redis = services(markers())["redis"]
    assert redis["environment"] == {"REDIS_PASSWORD": markers()["REDIS_PASSWORD"]}
    for value in ("", PLACEHOLDER):
        refused = _redis_args(redis, tmp_path, value)
        assert refused.returncode == 1 and "REDIS_PASSWORD" in refused.stderr, (value, refused.stderr)
    started = _redis_args(redis, tmp_path, "a-real-one")
    assert started.returncode == 0, started.stderr
    args = started.stdout.splitlines()
    assert args[0] == "redis-server", "the image's entrypoint drops to user redis for redis-server only"
    opts = dict(zip(args[1::2], args[2::2]))
    assert opts["--requirepass"] == "a-real-one" and opts["--port"] == "0"
    assert opts["--tls-cert-file"] == "/certs/redis.crt" and opts["--tls-key-file"] == "/certs/redis.key"
    assert opts["--tls-ca-cert-file"] == "/certs/ca.crt" and _mounts(redis)["/certs"] == ("tls", True)
    health = " ".join(redis["healthcheck"]["test"])
    assert "--tls" in health and "/certs/ca.crt" in health and "REDIS_PASSWORD" in health
    port = int(opts["--tls-port"])
    for name in ("airflow-scheduler", "airflow-worker"):
        env = services(markers())[name]["environment"]
        broker = urlparse(env["AIRFLOW__CELERY__BROKER_URL"])
        assert (broker.scheme, broker.hostname, broker.port) == ("rediss", "redis", port), name
        assert broker.password == markers()["REDIS_PASSWORD"], name
        assert env["AIRFLOW__CELERY__SSL_ACTIVE"] == "True" and env["AIRFLOW__CELERY__SSL_CACERT"] == "/certs/ca.crt"


def test_airflow_runs_on_celery_with_workers_like_the_scheduler() -> None:
    svcs = services(markers())
    airflow = [name for name in svcs if name.startswith("airflow-")]
    assert {svcs[n]["environment"]["AIRFLOW__CORE__EXECUTOR"] for n in airflow} == {"CeleryExecutor"}
    cluster = _xml(CLUSTER_XML).find("remote_servers")[0].tag
    dwh = {json.loads(svcs[n]["environment"]["AIRFLOW_CONN_CLICKHOUSE_DWH"])["extra"].get("cluster") for n in airflow}
    assert dwh == {cluster}, "dbt builds ON CLUSTER the cluster of clickhouse_dwh's extra (bankcdc_ops.dbt)"
    scheduler, worker = svcs["airflow-scheduler"], svcs["airflow-worker"]
    assert worker["command"][:3] == ["airflow", "celery", "worker"]
    assert int(worker.get("deploy", {}).get("replicas", 1)) >= 1
    assert {k: v for k, v in worker["environment"].items() if k != "DUMB_INIT_SETSID"} == scheduler["environment"], \
        "a worker runs the tasks the scheduler sends: same settings, connections and secrets"
    assert sorted(worker["volumes"]) == sorted(scheduler["volumes"])
    assert {d: s["condition"] for d, s in worker["depends_on"].items()} == {
        "airflow-init": "service_completed_successfully", "redis": "service_healthy",
        "clickhouse-schema": "service_completed_successfully"}
    assert scheduler["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "celery@$${HOSTNAME}" in worker["healthcheck"]["test"][-1] or "celery@${HOSTNAME}" in worker["healthcheck"]["test"][-1]
    backend = scheduler["environment"]["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert backend.startswith("db+postgresql")
    url, metadata = urlparse(backend.removeprefix("db+")), urlparse(scheduler["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert (url.hostname, url.path, url.username) == (metadata.hostname, metadata.path, metadata.username) == \
        ("postgres", "/airflow", "airflow")
    assert parse_qs(url.query)["sslmode"] == ["verify-full"]
    concurrency = int(worker["environment"]["AIRFLOW__CELERY__WORKER_CONCURRENCY"])
    assert concurrency * int(worker["deploy"]["replicas"]) <= int(scheduler["environment"]["AIRFLOW__CORE__PARALLELISM"])


def test_the_image_installs_the_celery_provider_and_redis_client() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    lock = (REPO / "requirements.lock").read_text()
    for package in ("apache-airflow-providers-celery", "celery"):
        pin = re.search(rf'"{package}==([\d.]+)"', pyproject)
        assert pin, f"pyproject.toml should pin {package}"
        assert re.search(rf"^{package}=={re.escape(pin.group(1))}$", lock, re.M), f"requirements.lock: {package}"
    for package in ("kombu", "redis"):
        assert re.search(rf"^{package}==\S+$", lock, re.M), f"requirements.lock lacks {package}"


def test_the_celery_executor_builds_its_app_from_the_worker_settings(tmp_path: Path) -> None:
    """What the scheduler and the workers import (in CI's venv, which installs requirements.lock):
    the provider's executor with the Celery of the lock, configured from the worker's environment."""
    assert importlib.util.find_spec("airflow.providers.celery") is not None, \
        "apache-airflow-providers-celery is not installed: `./stack test` installs requirements.lock, which has it"
    worker = services(markers())["airflow-worker"]["environment"]
    env = {**{k: str(v) for k, v in worker.items()}, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": str(tmp_path), "AIRFLOW_HOME": str(tmp_path)}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    probe = ("import json, redis\n"
             "from airflow.providers.celery.executors.celery_executor import CeleryExecutor\n"
             "from airflow.providers.celery.executors.celery_executor_utils import app\n"
             "ssl = {k: getattr(v, 'name', v) for k, v in (app.conf.broker_use_ssl or {}).items()}\n"
             "print(json.dumps({'executor': CeleryExecutor.__name__, 'broker': app.conf.broker_url, 'ssl': ssl,\n"
             "                  'backend': app.conf.result_backend, 'concurrency': app.conf.worker_concurrency}))\n")
    result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    conf = json.loads(result.stdout.strip().splitlines()[-1])
    assert conf["broker"] == worker["AIRFLOW__CELERY__BROKER_URL"]
    assert conf["ssl"] == {"ssl_cert_reqs": "CERT_REQUIRED", "ssl_ca_certs": "/certs/ca.crt"}
    assert conf["backend"] == worker["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert conf["concurrency"] == int(worker["AIRFLOW__CELERY__WORKER_CONCURRENCY"])


# ------------------------------------------------------------------ TLS: every node in its certificate

def _certificate_of(name: str, svc: dict) -> str:
    """The server certificate (name in the tls volume) a service presents, read from its own config."""
    if name in BROKERS:
        return re.search(r"^ssl\.keystore\.location=\$\{KAFKA_TLS_DIR\}/(\w+)\.pem$", START_SH.read_text(), re.M).group(1)
    if name in REPLICAS:
        return Path(_xml(TLS_XML).findtext("openSSL/server/certificateFile")).stem
    if name in KEEPERS:
        return Path(_xml(KEEPER_XML).findtext("openSSL/server/certificateFile")).stem
    args = " ".join(svc["entrypoint"])
    return Path(re.search(r"--tls-cert-file (\S+)", args).group(1)).stem


def test_each_new_node_is_trusted_under_its_service_name(tmp_path: Path) -> None:
    svcs = services()
    certs = svcs["certs"]
    extra = certs["environment"][tls_certs.EXTRA_HOSTS_ENV]
    ca_dir, out = tmp_path / "ca", tmp_path / "certs"
    assert tls_certs.main(["--ca-dir", str(ca_dir), "--out", str(out)], env={tls_certs.EXTRA_HOSTS_ENV: extra}) == 0
    for name in (*BROKERS, *REPLICAS, *KEEPERS, "redis"):
        cert = _certificate_of(name, svcs[name])
        _handshake(out, cert, name)
        assert _mounts(svcs[name])["/certs"] == ("tls", True), name
    # and the single-node file's certificates stay as they were: no new name, no Redis certificate
    single = tmp_path / "single"
    assert tls_certs.main(["--ca-dir", str(ca_dir), "--out", str(single)], env={}) == 0
    assert not (single / "redis.crt").exists()
