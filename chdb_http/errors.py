"""ClickHouse exceptions as clickhouse-server reports them over HTTP."""

from __future__ import annotations

import re

# exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp), keyed by error name.
_STATUS_BY_NAME: dict[str, int] = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        ("UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE", "ACCESS_DENIED"), 403
    ),
    **dict.fromkeys(
        (
            "BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT", "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE", "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING", "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST", "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST",
            "TOO_BIG_AST", "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ),
        400,
    ),
    **dict.fromkeys(
        (
            "UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE", "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING", "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE",
        ),
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

_CODE_RE = re.compile(r"Code: (\d+)\. DB::Exception: ")
_NAME_RE = re.compile(r"\(([A-Z][A-Z0-9_]+)\)(?: \(version [^)]*\))?\s*$")
_VERSION_RE = re.compile(r" \(version [^)]*\)\s*$")


class ClickHouseError(Exception):
    """An error to answer with, carrying ClickHouse's numeric code and symbolic name."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message

    @property
    def http_status(self) -> int:
        return _STATUS_BY_NAME.get(self.name, 500)

    def body(self, version: str) -> str:
        """The response body clickhouse-server writes for this exception."""
        return f"Code: {self.code}. DB::Exception: {self.message}. ({self.name}) (version {version})\n"

    @classmethod
    def from_engine(cls, text: str) -> ClickHouseError:
        """Parse an exception message raised by chDB (``Code: N. DB::Exception: ... (NAME)``)."""
        start = text.find("Code: ")
        text = text[start:].strip() if start >= 0 else text.strip()
        code_match = _CODE_RE.match(text)
        if not code_match:
            return cls(1001, "STD_EXCEPTION", text)
        rest = _VERSION_RE.sub("", text[code_match.end():])
        name_match = _NAME_RE.search(rest)
        name = name_match.group(1) if name_match else "UNKNOWN_EXCEPTION"
        message = rest[: name_match.start()].rstrip() if name_match else rest
        if message.endswith("."):
            message = message[:-1]
        return cls(int(code_match.group(1)), name, message)


def readonly_error(user: str, get_method: bool = False) -> ClickHouseError:
    """READONLY as raised for a write in readonly mode."""
    msg = f"{user}: Cannot execute query in readonly mode"
    if get_method:
        msg += ". For queries over HTTP, method GET implies readonly. You should use method POST for modifying queries"
    return ClickHouseError(164, "READONLY", msg)


def authentication_error(user: str, *, required: bool = False) -> ClickHouseError:
    """AUTHENTICATION_FAILED (or REQUIRED_PASSWORD) with clickhouse-server's wording."""
    msg = f"{user}: Authentication failed: password is incorrect, or there is no user with such name"
    if user == "default":
        msg += (
            ".\n\nIf you have installed ClickHouse and forgot password you can reset it in the configuration file.\n"
            "The password for default user is typically located at /etc/clickhouse-server/users.d/default-password.xml\n"
            "and deleting this file will reset the password.\n"
            "See also /etc/clickhouse-server/users.xml on the server where ClickHouse is installed.\n\n"
        )
    if required:
        return ClickHouseError(194, "REQUIRED_PASSWORD", msg)
    return ClickHouseError(516, "AUTHENTICATION_FAILED", msg)
