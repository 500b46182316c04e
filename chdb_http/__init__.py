"""ClickHouse's HTTP interface served from one in-process chDB engine (local stand-in for clickhouse-server)."""
