"""The production stack's CA and server certificates pass a real TLS handshake with hostname checks."""

from __future__ import annotations

import re
import ssl
import stat

import pytest

from bankcdc_stack import tls_certs


def _handshake(out, server_name: str, hostname: str) -> None:
    """A TLS handshake in memory: the server with `server_name`'s key, the client trusting ca.crt only."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(out / f"{server_name}.crt", out / f"{server_name}.key")
    client_ctx = ssl.create_default_context(cafile=str(out / "ca.crt"))
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client), ("server", server)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError(f"handshake did not finish: {done}")


def test_each_service_is_trusted_under_its_names_and_keys_are_private(tmp_path) -> None:
    ca_dir, out = tmp_path / "ca", tmp_path / "certs"
    assert tls_certs.main(["--ca-dir", str(ca_dir), "--out", str(out)]) == 0
    for name, server in tls_certs.SERVICES.items():
        for host in server.hosts:
            _handshake(out, name, host)
        assert stat.S_IMODE((out / f"{name}.key").stat().st_mode) == 0o600
        assert (out / f"{name}.pem").read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert not (out / "ca.key").exists(), "the CA's key stays in its own folder"
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(out, "postgres", "kafka")  # a certificate is good for its own service only


def test_a_second_run_keeps_valid_certificates_and_replaces_foreign_ones(tmp_path) -> None:
    ca_dir, out = tmp_path / "ca", tmp_path / "certs"
    tls_certs.main(["--ca-dir", str(ca_dir), "--out", str(out)])
    before = {name: (out / f"{name}.crt").read_bytes() for name in tls_certs.SERVICES}
    ca = (out / "ca.crt").read_bytes()
    tls_certs.main(["--ca-dir", str(ca_dir), "--out", str(out)])
    assert {name: (out / f"{name}.crt").read_bytes() for name in tls_certs.SERVICES} == before
    assert (out / "ca.crt").read_bytes() == ca
    # certificates another CA signed (a CA volume lost and made again) are issued anew
    tls_certs.main(["--ca-dir", str(tmp_path / "other-ca"), "--out", str(out)])
    assert (out / "ca.crt").read_bytes() != ca
    assert all((out / f"{name}.crt").read_bytes() != before[name] for name in tls_certs.SERVICES)
    _handshake(out, "kafka", "kafka")


def test_extra_hosts_name_the_other_nodes_and_issue_servers_on_request(tmp_path) -> None:
    """docker-compose.cluster.yml's certs one-shot: more names on a server's certificate, and
    Redis's certificate, which the single-node file never asks for."""
    ca_dir, out = tmp_path / "ca", tmp_path / "certs"
    env = {tls_certs.EXTRA_HOSTS_ENV: "kafka=kafka-2,kafka-3 redis"}
    assert tls_certs.main(["--ca-dir", str(ca_dir), "--out", str(out), "--extra-hosts", "clickhouse=clickhouse-2"],
                          env=env) == 0
    for name, host in (("kafka", "kafka"), ("kafka", "kafka-3"), ("clickhouse", "clickhouse-2"),
                       ("redis", "redis"), ("redis", "localhost")):
        _handshake(out, name, host)
    assert stat.S_IMODE((out / "redis.key").stat().st_mode) == 0o600
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(out, "kafka", "clickhouse-2")  # the extra names go to their own server only
    # back to one node: the certificates no longer name the others (they are issued anew)
    before = (out / "kafka.crt").read_bytes()
    assert tls_certs.main(["--ca-dir", str(ca_dir), "--out", str(out)], env={}) == 0
    assert (out / "kafka.crt").read_bytes() != before
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(out, "kafka", "kafka-2")
    _handshake(out, "kafka", "kafka")


def test_extra_hosts_parse_and_reject_what_names_no_server() -> None:
    extra = tls_certs.parse_extra_hosts(["kafka=kafka-2,kafka-3", "kafka=kafka-3,10.0.0.7", "redis"])
    assert extra == {"kafka": ("kafka-2", "kafka-3", "10.0.0.7"), "redis": ()}
    chosen = tls_certs.servers(extra)
    assert chosen["kafka"].hosts == ("kafka", "localhost", "127.0.0.1", "kafka-2", "kafka-3", "10.0.0.7")
    assert chosen["redis"] == tls_certs.ON_REQUEST["redis"] and chosen["postgres"] == tls_certs.SERVICES["postgres"]
    assert set(tls_certs.servers()) == set(tls_certs.SERVICES), "no server on request unless named"
    for entry, complaint in (("zookeeper=zk-1", "no server 'zookeeper'"), ("kafka=", "''"),
                             ("kafka=kafka_2", "'kafka_2'"), ("kafka=-x,kafka-2", "'-x'")):
        with pytest.raises(ValueError, match=re.escape(complaint)):
            tls_certs.parse_extra_hosts([entry])


def test_a_wrong_extra_hosts_setting_exits_2_before_touching_anything(tmp_path, capsys) -> None:
    ca_dir, out = tmp_path / "ca", tmp_path / "certs"
    code = tls_certs.main(["--ca-dir", str(ca_dir), "--out", str(out)], env={tls_certs.EXTRA_HOSTS_ENV: "kafak=kafka-2"})
    assert code == 2 and tls_certs.EXTRA_HOSTS_ENV in capsys.readouterr().err
    assert not ca_dir.exists() and not out.exists()
