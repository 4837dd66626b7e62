"""How the JSON API answers an error: always ``{"code", "message", "detail"}``.

``code`` is stable (clients branch on it), ``message`` is one sentence for a
person, and ``detail`` repeats it (the shape of the first version of the API).

django-ninja checks every typed parameter (path, query, header, body) before
the view runs and, by default, answers 422 with pydantic's list of errors.
This API answers **400** ``invalid_request`` instead, and keeps 422 for the
one case that is not about the request's form (an ``Idempotency-Key`` reused
for another request).
"""

import json
import re
from collections.abc import Callable
from functools import partial

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI, Schema
from ninja.errors import (
    AuthenticationError,
    HttpError,
    ValidationError,
    ValidationErrorContext,
)
from pydantic import Field


class ErrorOut(Schema):
    code: str = Field(description="stable, for programs: e.g. invalid_request")
    message: str = Field(description="one sentence saying what is wrong")
    detail: str = Field(description="the message again")


def error_body(code: str, message: str, **extra) -> dict:
    return {"code": code, "message": message, "detail": message, **extra}


def error_response(
    status: int, code: str, message: str, *, headers: dict | None = None, **extra
) -> JsonResponse:
    response = JsonResponse(error_body(code, message, **extra), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class ApiProblem(Exception):
    """Raised anywhere in an API call (authentication included): answered as
    ``status`` with ``{"code", "message", "detail"}`` and ``headers``."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


# Where a parameter was read from, as the message names it.
_PLACES = {
    "path": "path",
    "query": "query",
    "header": "header",
    "cookie": "cookie",
    "body": "body",
    "form": "form",
    "file": "file",
}
_SHOWN = 60  # characters of a rejected value quoted back


def _quoted(value: object) -> str:
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN else value[:_SHOWN] + "…"
        return f"“{shown}”"
    try:
        text = json.dumps(value, default=str)
    except ValueError:  # a circular structure; pydantic never hands one over
        text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _choices(expected: str) -> str:
    """pydantic's ``'a', 'b' or 'c'`` as ``a, b, c``."""
    names = re.findall(r"'((?:[^'\\]|\\.)*)'", expected)
    return ", ".join(names) if names else expected


def _length(value: object) -> str:
    return f" (it has {len(value)})" if isinstance(value, str | bytes) else ""


_TEXTS: dict[str, Callable[[object, dict], str]] = {
    "enum": lambda given, ctx: (
        f"{_quoted(given)} is not one of {_choices(str(ctx.get('expected', '')))}"
    ),
    "literal_error": lambda given, ctx: (
        f"{_quoted(given)} is not one of {_choices(str(ctx.get('expected', '')))}"
    ),
    "int_parsing": lambda given, ctx: f"{_quoted(given)} is not a whole number",
    "int_type": lambda given, ctx: f"{_quoted(given)} is not a whole number",
    "int_from_float": lambda given, ctx: f"{_quoted(given)} is not a whole number",
    "greater_than_equal": lambda given, ctx: (
        f"must be at least {ctx.get('ge')} (got {_quoted(given)})"
    ),
    "less_than_equal": lambda given, ctx: (
        f"must be at most {ctx.get('le')} (got {_quoted(given)})"
    ),
    "string_too_long": lambda given, ctx: (
        f"must have at most {ctx.get('max_length')} characters{_length(given)}"
    ),
    "string_too_short": lambda given, ctx: (
        f"must have at least {ctx.get('min_length')} character(s)"
    ),
    "string_pattern_mismatch": lambda given, ctx: (
        f"{_quoted(given)} does not match {ctx.get('pattern')}"
    ),
    "string_type": lambda given, ctx: f"{_quoted(given)} is not a string",
    "missing": lambda given, ctx: "is required",
    "extra_forbidden": lambda given, ctx: "is not a member this body takes",
    "model_attributes_type": lambda given, ctx: (
        f"must be a JSON object (got {_quoted(given)})"
    ),
    "model_type": lambda given, ctx: f"must be a JSON object (got {_quoted(given)})",
    "dict_type": lambda given, ctx: f"must be a JSON object (got {_quoted(given)})",
}


def _problem(error: dict) -> str:
    text = _TEXTS.get(error.get("type", ""))
    if text is None:
        return str(error.get("msg", "is not valid"))
    return text(error.get("input"), error.get("ctx") or {})


def _entry(place: str, names: list, error: dict) -> str:
    """``name: problem``; the body itself has no name."""
    # A body parameter's own name (``payload``) is not something the caller
    # sent: name the field inside the body, if any.
    if place == "body":
        names = names[1:]
    if not names:
        if error.get("type") == "missing":
            return "nothing was sent"
        return _problem(error)
    return f"{'.'.join(str(name) for name in names)}: {_problem(error)}"


def validation_message(errors: list[dict]) -> str:
    """One readable sentence per place: ``Invalid query: limit: must be at most
    200 (got “500”); sort: “new” is not one of -uploaded, uploaded, …``."""
    by_place: dict[str, list[str]] = {}
    for error in errors:
        place, *names = error.get("loc") or ("request",)
        place = _PLACES.get(str(place), "request")
        by_place.setdefault(place, []).append(_entry(place, names, error))
    return " ".join(
        f"Invalid {place}: {'; '.join(problems)}."
        for place, problems in by_place.items()
    )


class RefrainAPI(NinjaAPI):
    """NinjaAPI whose validation errors keep the value each one rejected (ninja
    drops it), so that the message can quote it back."""

    def validation_error_from_error_contexts(
        self, error_contexts: list[ValidationErrorContext]
    ) -> ValidationError:
        error = super().validation_error_from_error_contexts(error_contexts)
        given = [
            detail.get("input")
            for context in error_contexts
            for detail in context.pydantic_validation_error.errors(include_url=False)
        ]
        for detail, value in zip(error.errors, given, strict=False):
            detail["input"] = value
        return error


def _bad_request(
    request: HttpRequest, exc: ValidationError, *, api: NinjaAPI
) -> HttpResponse:
    return error_response(400, "invalid_request", validation_message(exc.errors))


def _problem_response(request: HttpRequest, exc: ApiProblem) -> HttpResponse:
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


def _unauthorized(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    message = str(exc.message) if exc.message != "Unauthorized" else ""
    return error_response(
        401,
        "unauthorized",
        message or "Send a valid key or token as Authorization: Bearer <key>.",
        headers={"WWW-Authenticate": "Bearer"},
    )


_HTTP_CODES = {
    400: "invalid_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusals (a failed CSRF check is a 403)."""
    message = str(exc.message)
    if message and not message.endswith("."):
        message += "."
    return error_response(
        exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), message
    )


def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(404, "not_found", str(exc) or "There is nothing here.")


def answer_errors_as_json(api: NinjaAPI) -> None:
    """Every error this API gives as ``{"code", "message", "detail"}``; a
    request that does not fit the schema is a 400."""
    api.add_exception_handler(ValidationError, partial(_bad_request, api=api))
    api.add_exception_handler(ApiProblem, _problem_response)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(AuthenticationError, _unauthorized)
    api.add_exception_handler(Http404, _not_found)
