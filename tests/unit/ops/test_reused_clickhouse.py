"""reused_clickhouse's lending rules: kept after use, never lent twice at once, dropped after an
error or once the connection changes. The clients stand in for clickhouse(conn_id)'s; the live
stack's cdc_monitoring tests run the stage checks with real ones."""

from __future__ import annotations

from typing import Iterator

import pytest
from airflow.models.connection import Connection

from bankcdc_ops import connections


class Client:
    def __init__(self, uri: str) -> None:
        self.uri, self.closed = uri, False

    def close(self) -> None:
        self.closed = True


class Source:
    """The connection's URI as it stands, and every client built from it, in order."""

    def __init__(self) -> None:
        self.uri = "http://default:pw@ch:8123"
        self.clients: list[Client] = []

    def build(self, _conn_id: str) -> Client:
        self.clients.append(Client(self.uri))
        return self.clients[-1]


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> Iterator[Source]:
    source = Source()
    monkeypatch.setattr(connections, "_connection", lambda conn_id: Connection(conn_id=conn_id, uri=source.uri))
    monkeypatch.setattr(connections, "clickhouse", source.build)
    monkeypatch.setattr(connections, "_idle_clients", {})
    yield source


def test_a_client_is_lent_again_after_use(source: Source) -> None:
    for _ in range(3):
        with connections.reused_clickhouse("ch") as client:
            assert not client.closed
    assert len(source.clients) == 1


def test_two_callers_at_once_get_two_clients(source: Source) -> None:
    with connections.reused_clickhouse("ch") as first, connections.reused_clickhouse("ch") as second:
        assert first is not second
    with connections.reused_clickhouse("ch") as third:
        assert third in (first, second)
    assert len(source.clients) == 2


def test_a_client_whose_use_raised_is_closed_and_not_lent_again(source: Source) -> None:
    with pytest.raises(RuntimeError), connections.reused_clickhouse("ch") as broken:
        raise RuntimeError("query failed")
    assert broken.closed
    with connections.reused_clickhouse("ch") as client:
        assert client is not broken and not client.closed


def test_a_changed_connection_closes_the_idle_clients(source: Source) -> None:
    with connections.reused_clickhouse("ch") as old:
        pass
    source.uri = "http://default:rotated@ch:8123"
    with connections.reused_clickhouse("ch") as new:
        assert new is not old and new.uri == source.uri
    assert old.closed and not new.closed


def test_a_client_lent_before_the_change_is_closed_when_returned(source: Source) -> None:
    with connections.reused_clickhouse("ch") as lent:
        source.uri = "http://default:rotated@ch:8123"
        with connections.reused_clickhouse("ch"):
            pass
    assert lent.closed
    with connections.reused_clickhouse("ch") as client:
        assert client.uri == source.uri
