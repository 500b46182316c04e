"""Users and settings profiles from a clickhouse-server ``users.xml``.

The same file configures the production clickhouse-server, so only its format
is read: ``<profiles>`` (with ``<profile>`` inheritance), ``<users>`` with
``<password>``, ``<password_sha256_hex>``, ``<password_double_sha1_hex>`` or
``<no_password/>``, ``<profile>`` and ``<grants>`` (see grants.py). Any element may carry
``from_env="VAR"`` as in clickhouse-server's config preprocessor. Unlike the
server (which warns and keeps an empty value) a missing variable is a start-up
error here, so a forgotten secret never becomes an empty password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from chdb_http.grants import Grant, GrantsConfigError, parse_grant


class UsersConfigError(ValueError):
    """The users file cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class User:
    """One user: how to check its password and the settings of its profile."""

    name: str
    password_kind: str  # plaintext | sha256 | double_sha1 | none
    password_value: str = field(repr=False)
    settings: Mapping[str, str] = field(default_factory=dict)
    grants: tuple[Grant, ...] | None = None  # None: every privilege (no <grants> element)

    @property
    def readonly(self) -> int:
        try:
            return int(self.settings.get("readonly", "0"))
        except ValueError:
            return 1

    @property
    def requires_password(self) -> bool:
        return self.password_kind != "none" and not (self.password_kind == "plaintext" and self.password_value == "")

    def check_password(self, password: str) -> bool:
        """Compare in constant time, as the configured method says."""
        if self.password_kind == "none":
            return True
        if self.password_kind == "plaintext":
            return hmac.compare_digest(password.encode(), self.password_value.encode())
        if self.password_kind == "sha256":
            digest = hashlib.sha256(password.encode()).hexdigest()
        else:
            digest = hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest()
        return hmac.compare_digest(digest, self.password_value.lower())


@dataclass(frozen=True)
class UsersConfig:
    """All users of the file, by name."""

    users: Mapping[str, User]

    def get(self, name: str) -> User | None:
        return self.users.get(name)


def _substitute_env(elem: ET.Element, env: Mapping[str, str], path: str) -> None:
    """Apply ``from_env`` like clickhouse-server's ConfigProcessor (the variable's value replaces the content)."""
    for attr in ("incl", "from_zk"):
        if attr in elem.attrib:
            raise UsersConfigError(f"{path}: attribute {attr}= is not supported by chdb-http; use from_env= or a literal value")
    var = elem.attrib.get("from_env")
    if var is not None:
        if var not in env:
            raise UsersConfigError(
                f"{path} takes its value from environment variable {var}, which is not set: export {var}=<value>"
            )
        elem.text = env[var]
        for child in list(elem):
            elem.remove(child)
    for child in elem:
        _substitute_env(child, env, f"{path}/{child.tag}")


def _profile_settings(profiles: ET.Element | None, name: str, seen: tuple[str, ...] = ()) -> dict[str, str]:
    if name in seen:
        raise UsersConfigError(f"profiles/{name}: circular <profile> inheritance via {' -> '.join(seen)}")
    node = profiles.find(name) if profiles is not None else None
    if node is None:
        if name == "default":
            return {}
        raise UsersConfigError(f"profiles/{name} is referenced but not defined: add <profiles><{name}>...</{name}></profiles>")
    settings: dict[str, str] = {}
    for child in node:
        if child.tag == "profile":
            settings.update(_profile_settings(profiles, (child.text or "").strip(), (*seen, name)))
        elif child.tag != "constraints":
            settings[child.tag] = (child.text or "").strip()
    return settings


def _parse_user(node: ET.Element, profiles: ET.Element | None) -> User:
    methods = [
        (tag, kind)
        for tag, kind in (
            ("password", "plaintext"),
            ("password_sha256_hex", "sha256"),
            ("password_double_sha1_hex", "double_sha1"),
            ("no_password", "none"),
        )
        if node.find(tag) is not None
    ]
    unsupported = [c.tag for c in node if c.tag in ("ldap", "kerberos", "ssl_certificates", "ssh_keys", "http_authentication")]
    if unsupported or len(methods) > 1:
        raise UsersConfigError(
            f"users/{node.tag}: use exactly one of <password>, <password_sha256_hex>, <password_double_sha1_hex>, <no_password/>"
        )
    tag, kind = methods[0] if methods else ("password", "plaintext")
    value = (node.findtext(tag) or "").strip() if kind != "plaintext" else (node.findtext(tag) or "")
    profile = (node.findtext("profile") or "default").strip()
    grants_node = node.find("grants")
    grants = None
    if grants_node is not None:
        try:
            grants = tuple(parse_grant(q.text or "") for q in grants_node.findall("query"))
        except GrantsConfigError as exc:
            raise UsersConfigError(f"users/{node.tag}/{exc}") from exc
    return User(node.tag, kind, value, _profile_settings(profiles, profile), grants)


def parse_users_xml(text: str, env: Mapping[str, str] | None = None, source: str = "users.xml") -> UsersConfig:
    """Parse users.xml content; ``env`` defaults to the process environment."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise UsersConfigError(f"{source} is not valid XML: {exc}") from exc
    if root.tag not in ("clickhouse", "yandex"):
        raise UsersConfigError(f"{source}: the root element must be <clickhouse>, found <{root.tag}>")
    _substitute_env(root, os.environ if env is None else env, root.tag)
    users_node = root.find("users")
    if users_node is None or len(users_node) == 0:
        raise UsersConfigError(f"{source}: no users defined; add <users><default>...</default></users>")
    profiles = root.find("profiles")
    return UsersConfig({u.tag: _parse_user(u, profiles) for u in users_node})


def load_users(path: Path, env: Mapping[str, str] | None = None) -> UsersConfig:
    """Read and parse a users file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsersConfigError(f"cannot read users file {path}: {exc.strerror}; set --users-file or CLICKHOUSE_USERS_FILE") from exc
    return parse_users_xml(text, env, str(path))
