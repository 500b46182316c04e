"""One exception hierarchy for bank-cdc operations; every message says what to look at."""

from __future__ import annotations


class OpsError(Exception):
    """Base class of every error raised by bankcdc_ops."""


class ParamError(OpsError, ValueError):
    """A DAG param, Airflow Variable or connection extra has a value the task cannot use (the message
    names it)."""


class SourceUnavailableError(OpsError):
    """A service the task reads from (PostgreSQL, ClickHouse, Kafka, Connect) did not answer."""


class ThresholdExceededError(OpsError):
    """cdc_monitoring: at least one figure exceeded its threshold (figures were recorded first)."""


class ReconciliationError(OpsError):
    """reconciliation: PostgreSQL and ODS disagree on settled rows."""


class NothingToReconcile(OpsError):
    """reconciliation: no dbt_incremental build yet, so no source instant to compare as of."""


class SourceInstantError(OpsError):
    """The run's source instant cannot be chosen: Kafka did not answer."""


class SourceInstantPending(SourceInstantError):
    """No source instant yet: a stream has loaded nothing and its connector sent no heartbeat."""


class DbtBuildError(OpsError):
    """dbt_incremental: the dbt build failed; the message names the failed models and tests."""
