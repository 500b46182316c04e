"""One exception hierarchy for bank-cdc operations; every message says what to look at."""

from __future__ import annotations


class OpsError(Exception):
    """Base class of every error raised by bankcdc_ops."""


class ParamError(OpsError, ValueError):
    """A DAG param or Airflow Variable has a value the task cannot use (the message names it)."""


class SourceUnavailableError(OpsError):
    """A service the task reads from (PostgreSQL, ClickHouse, Kafka, Connect) did not answer."""


class ThresholdExceededError(OpsError):
    """cdc_monitoring: at least one figure exceeded its threshold (figures were recorded first)."""


class ReconciliationError(OpsError):
    """reconciliation: PostgreSQL and ODS disagree on settled rows."""
