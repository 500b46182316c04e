"""The filler's exception hierarchy."""

from __future__ import annotations


class FillerError(Exception):
    """Base class of every error the filler raises on purpose."""


class ConfigError(FillerError):
    """A setting is missing or out of range; the message names the flag (exit code 2)."""


class DatabaseUnavailable(FillerError):
    """PostgreSQL could not be reached (after retrying, where the mode retries)."""


class SchemaMissing(FillerError):
    """The database has no `bank` schema: apply schema.sql first."""
