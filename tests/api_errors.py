"""The shape of every JSON API error, as the tests expect it."""

from config.api_errors import error_body


def api_error(code: str, message: str, **extra) -> dict:
    return error_body(code, message, **extra)
