"""The stack's one exception hierarchy: every message says what is wrong and how to fix it."""


class StackError(Exception):
    """Base of every error the local stack raises on purpose."""


class ConfigError(StackError):
    """A setting has a bad value; the message names the setting and the fix."""


class MissingDependencyError(StackError):
    """A program or file the stack needs is absent; the message names the install command."""


class PortInUseError(StackError):
    """A port the stack wants is held by another process."""


class ServiceFailedError(StackError):
    """A service did not start or did not become healthy in time."""
