"""One gate for hostile input, before any view or the database sees it.

PostgreSQL refuses a NUL character in text, and no database driver can
encode a lone surrogate; either reaching a query is a 500. Rather than patch
each view, ``InputGuardMiddleware`` answers 400, with one plain sentence,
when the path, the query string, a header (cookies included), a form field or
file name, or a JSON body carries a NUL, or the query string, a urlencoded form
or a JSON body is not UTF-8 or holds a lone surrogate, or
when a JSON body is nested deeper than ``MAX_JSON_DEPTH`` or larger than
``DATA_UPLOAD_MAX_MEMORY_SIZE`` (then 413). Under ``/api/`` the answer is JSON
(``{"code": "bad_input", "message": …, "detail": …}``, the API's error shape);
elsewhere it is plain text, like the pages' other error answers.

Streamed bodies (the catalogue import's CSV and JSON Lines) are left alone:
the importer reports a bad row by its line (``catalog.importer``).

``text_problem`` and ``json_problem`` are the same checks for values that
arrive by another way (a cursor decoded from the URL, an import row).
"""

import json
from urllib.parse import unquote_to_bytes

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError

MAX_JSON_DEPTH = 32

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class BadInput(Exception):
    """What is wrong with a request, in one sentence; ``status`` is its code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (in words), or None when it can."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid UTF-8 text"
    return None


def json_problem(value: object, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why a parsed JSON value is unfit (too deep, or a key or string that
    ``text_problem`` refuses), or None. Walks without recursion."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"a string {problem}"
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            return f"nested deeper than {max_depth} levels"
        if isinstance(item, dict):
            stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in item.values())
        else:
            stack.extend((child, depth + 1) for child in item)
    return None


def _percent_decoded(name: str, raw: bytes) -> None:
    """Raise BadInput when percent-encoded ``raw`` is not UTF-8 or has a NUL."""
    decoded = unquote_to_bytes(raw) if b"%" in raw else raw
    if b"\x00" in decoded:
        raise BadInput(f"The {name} contains a NUL character.")
    if not decoded.isascii():
        try:
            decoded.decode("utf-8")
        except UnicodeDecodeError:
            raise BadInput(f"The {name} is not valid UTF-8.") from None


def _raw_bytes(text: str) -> bytes:
    """WSGI hands raw bytes over as Latin-1 text; get the bytes back."""
    try:
        return text.encode("iso-8859-1")
    except UnicodeEncodeError:  # already decoded (not WSGI)
        return text.encode("utf-8", "surrogatepass")


def _check_path(request: HttpRequest) -> None:
    # Bytes that are not UTF-8 need no check here: Django re-percent-encodes
    # them, so the view sees harmless text (and answers 404).
    problem = text_problem(request.path_info)
    if problem:
        raise BadInput(f"The address {problem}.")


def _check_headers(request: HttpRequest) -> None:
    # Cookies travel in a header, so a NUL in the session id is caught here.
    for key, value in request.META.items():
        if key.startswith("HTTP_") and isinstance(value, str) and "\x00" in value:
            name = key[5:].replace("_", "-").title()
            raise BadInput(f"The {name} header contains a NUL character.")


def _check_form(request: HttpRequest, content_type: str) -> None:
    if content_type == "application/x-www-form-urlencoded":
        _percent_decoded("form", request.body)
    for name, values in request.POST.lists():
        problem = text_problem(name)
        if problem:
            raise BadInput(f"A form field's name {problem}.")
        for value in values:
            problem = text_problem(value)
            if problem:
                raise BadInput(f"The form field “{name[:40]}” {problem}.")
    for name, files in request.FILES.lists():
        if text_problem(name):
            raise BadInput("A file field's name is not valid text.")
        for upload in files:
            problem = text_problem(upload.name or "")
            if problem:
                raise BadInput(f"The name of the file in “{name[:40]}” {problem}.")


def _check_json(request: HttpRequest) -> None:
    body = request.body
    if not body:
        return
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("The body is not valid UTF-8.") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadInput(
            f"The JSON body is nested deeper than {MAX_JSON_DEPTH} levels."
        ) from None
    except ValueError:
        return  # not JSON at all: the endpoint says what it expects
    problem = json_problem(value)
    if problem:
        raise BadInput(f"The JSON body is not accepted: {problem}.")


def check_request(request: HttpRequest) -> None:
    """Raise BadInput when any part of the request is unfit (see the module)."""
    _check_path(request)
    _percent_decoded("query string", _raw_bytes(request.META.get("QUERY_STRING", "")))
    _check_headers(request)
    content_type = request.content_type or ""
    try:
        if request.method in ("POST", "PUT", "PATCH", "DELETE"):
            if content_type in _FORM_TYPES:
                _check_form(request, content_type)
            elif content_type == "application/json" or content_type.endswith("+json"):
                _check_json(request)
    except RequestDataTooBig:
        raise BadInput("The request body is too large.", status=413) from None
    except (SuspiciousOperation, MultiPartParserError):
        # Too many fields or files, or a form body that does not parse.
        raise BadInput("The form could not be read.") from None


def bad_input_response(request: HttpRequest, error: BadInput) -> HttpResponse:
    message = str(error)
    if request.path_info.startswith("/api/"):
        return JsonResponse(
            {"code": "bad_input", "message": message, "detail": message},
            status=error.status,
        )
    return HttpResponse(
        f"Bad request: {message}\n",
        status=error.status,
        content_type="text/plain; charset=utf-8",
    )


class InputGuardMiddleware:
    """Answer 400 (or 413) before a view runs when the input is unfit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            check_request(request)
        except BadInput as error:
            return bad_input_response(request, error)
        return self.get_response(request)
