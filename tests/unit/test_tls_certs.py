"""The production stack's CA and server certificates pass a real TLS handshake with hostname checks."""

from __future__ import annotations

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
