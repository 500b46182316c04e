"""The production stack's TLS: a CA made at first start, and a server certificate per service.

docker-compose.yml runs `python -m bankcdc_stack.tls_certs` once before anything else starts. The
CA's key stays in its own volume, which only this one-shot mounts; every other container mounts
the output folder read-only and trusts `ca.crt`. A run is idempotent: an existing CA is kept, and a
server certificate is issued again only when it is missing, expires within RENEW_BEFORE, was not
signed by the CA, or names other hosts than SERVICES (and the extra hosts below) say.

A replicated topology (docker-compose.cluster.yml) runs more nodes of a server under other names:
`--extra-hosts kafka=kafka-2,kafka-3` (or the same entries, space-separated, in TLS_EXTRA_HOSTS)
adds names to a server's certificate, which its nodes share: they run as one user and mount the one
folder of keys, so a key per node would keep nothing from the others. A server of ON_REQUEST
(`redis`) gets a certificate only when an entry names it, with or without hosts of its own.

Each server gets `<name>.crt` (its certificate, then the CA's), `<name>.key` (PKCS#8, unencrypted,
mode 0600; run as root, as compose runs it, also owned by the user the service's image runs as,
which PostgreSQL insists on) and `<name>.pem` (key then certificates: Kafka's PEM keystore).
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 397  # what public CAs may issue; renewed at each start within RENEW_BEFORE
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class Server:
    hosts: tuple[str, ...]  # DNS names and IP addresses clients reach it by
    uid: int  # the user its image runs as (owns the key)


# the compose service names clients use, and localhost for each container's own health check
SERVICES = {
    "postgres": Server(("postgres", "localhost", "127.0.0.1"), 999),   # postgres:16 image, user postgres
    "kafka": Server(("kafka", "localhost", "127.0.0.1"), 1000),        # apache/kafka image, user appuser
    "clickhouse": Server(("clickhouse", "localhost", "127.0.0.1"), 101),  # clickhouse-server, user clickhouse
}
# servers only docker-compose.cluster.yml runs: issued when an extra-hosts entry names them
ON_REQUEST = {
    "redis": Server(("redis", "localhost", "127.0.0.1"), 999),  # redis image, user redis (Airflow's Celery broker)
}
EXTRA_HOSTS_ENV = "TLS_EXTRA_HOSTS"
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return bool(_HOST.fullmatch(host))


def parse_extra_hosts(entries: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`NAME=HOST[,HOST...]` entries (or `NAME` alone, for a server of ON_REQUEST) -> the hosts to add
    to each server's certificate. ValueError names the entry that is wrong and why."""
    extra: dict[str, tuple[str, ...]] = {}
    for entry in entries:
        name, sep, hosts_text = entry.partition("=")
        name = name.strip()
        if name not in SERVICES and name not in ON_REQUEST:
            raise ValueError(f"extra hosts {entry!r}: no server {name!r}; "
                             f"name one of {', '.join([*SERVICES, *ON_REQUEST])}")
        hosts = tuple(h.strip() for h in hosts_text.split(",")) if sep else ()
        bad = [h for h in hosts if not _valid_host(h)]
        if bad:
            raise ValueError(f"extra hosts {entry!r}: {', '.join(map(repr, bad))} is no DNS name or IP address")
        extra[name] = tuple(dict.fromkeys([*extra.get(name, ()), *hosts]))
    return extra


def servers(extra: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, Server]:
    """SERVICES and the ON_REQUEST servers `extra` names, each certificate naming `extra`'s hosts too."""
    extra = extra or {}
    chosen = {**SERVICES, **{name: ON_REQUEST[name] for name in extra if name in ON_REQUEST}}
    return {name: Server(tuple(dict.fromkeys([*server.hosts, *extra.get(name, ())])), server.uid)
            for name, server in chosen.items()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes, mode: int, uid: int | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    if uid is not None and os.geteuid() == 0:
        os.chown(tmp, uid, uid)
    os.replace(tmp, path)


def ensure_ca(ca_dir: Path, out: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """The CA of `ca_dir`, made if missing; its certificate is (re)published as `out`/ca.crt and root.crt."""
    cert_path, key_path = ca_dir / "ca.crt", ca_dir / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    else:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bank-cdc"),
                          x509.NameAttribute(NameOID.COMMON_NAME, "bank-cdc stack CA")])
        now = _now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        ca_dir.mkdir(parents=True, exist_ok=True)
        _write(key_path, _key_pem(key), 0o600)
        _write(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    out.mkdir(parents=True, exist_ok=True)
    for published in ("ca.crt", "root.crt"):  # root.crt: where pgjdbc (Debezium) looks for it in ~/.postgresql
        _write(out / published, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _names(server: Server) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in server.hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _current(path: Path, server: Server, ca: x509.Certificate) -> bool:
    """Whether the certificate at `path` is signed by `ca`, names `server`'s hosts and stays valid long enough."""
    if not path.exists() or not path.with_suffix(".key").exists():
        return False
    cert = x509.load_pem_x509_certificates(path.read_bytes())[0]
    try:
        cert.verify_directly_issued_by(ca)
        hosts = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return set(hosts) == set(_names(server)) and cert.not_valid_after_utc - _now() > RENEW_BEFORE


def issue(name: str, server: Server, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, out: Path) -> bool:
    """Write `name`'s key and certificate into `out` unless current ones are there; True if issued."""
    cert_path = out / f"{name}.crt"
    if _current(cert_path, server, ca):
        return False
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bank-cdc"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, server.hosts[0])]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(_names(server)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    key_pem = _key_pem(key)
    _write(out / f"{name}.key", key_pem, 0o600, server.uid)
    _write(out / f"{name}.pem", key_pem + chain, 0o600, server.uid)
    _write(cert_path, chain, 0o644)
    return True


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bankcdc_stack.tls_certs",
        description="Make the stack's CA at first start and a server certificate for each of "
                    f"{', '.join(SERVICES)}; later runs keep what is still valid.")
    parser.add_argument("--ca-dir", type=Path, required=True, help="where the CA's key and certificate live")
    parser.add_argument("--out", type=Path, required=True, help="what the services mount: ca.crt and theirs")
    parser.add_argument("--extra-hosts", action="append", default=[], metavar="NAME[=HOST,...]",
                        help="more names for server NAME's certificate (its other nodes), or a server of "
                             f"{', '.join(ON_REQUEST)} to issue; repeatable, and added to the space-separated "
                             f"entries of env {EXTRA_HOSTS_ENV}")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env
    try:
        extra = parse_extra_hosts([*env.get(EXTRA_HOSTS_ENV, "").split(), *args.extra_hosts])
    except ValueError as exc:  # a wrong setting: exit 2, no restart helps
        print(f"tls: {exc} (--extra-hosts or {EXTRA_HOSTS_ENV})", file=sys.stderr)
        return 2
    ca, ca_key = ensure_ca(args.ca_dir, args.out)
    for name, server in servers(extra).items():
        done = "issued" if issue(name, server, ca, ca_key, args.out) else "still valid"
        print(f"tls: {name} ({', '.join(server.hosts)}): {done}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
