"""Reading hostile catalogue files (catalog.importer): every problem is a row
error with its line, the other rows go on, and neither the command nor the
HTTP import raises."""

import io
import json

import pytest
from django.core.management import call_command

from catalog.importer import MAX_LINE_CHARS, RowError, read_rows, text_stream
from catalog.models import Track
from tests.dbstate import database_state

pytestmark = pytest.mark.django_db

HEADER = "isrc,title,artist_email,license_class,label,duration_ms"
GOOD_ROW = "GBA1B2400001,Plain,a@example.com,independent,,"
GOOD_JSON = json.dumps(
    {
        "isrc": "GBA1B2400001",
        "title": "Plain",
        "artist_email": "a@example.com",
        "license_class": "independent",
    }
)
TOKEN = "test-token"


def _errors(data: bytes, fmt: str) -> list[tuple[int, str]]:
    rows = list(read_rows(text_stream(io.BytesIO(data)), fmt=fmt))
    return [(row.line, row.reason) for row in rows if isinstance(row, RowError)]


def _valid(data: bytes, fmt: str) -> list[int]:
    rows = read_rows(text_stream(io.BytesIO(data)), fmt=fmt)
    return [row.line for row in rows if not isinstance(row, RowError)]


CSV_CASES = {
    "empty": (b"", [(1, "the file is empty (expected a header line)")]),
    "header only": (f"{HEADER}\n".encode(), []),
    "binary garbage": (
        bytes(range(256)) * 4,
        [(1, "the header is not UTF-8 text; save the file as UTF-8")],
    ),
    "utf-16": (
        f"{HEADER}\n{GOOD_ROW}\n".encode("utf-16"),
        [(1, "the header is not UTF-8 text; save the file as UTF-8")],
    ),
    "nul in a field": (
        f"{HEADER}\nGBA1B2400002,Bad\x00Title,a@example.com,independent,,\n"
        f"{GOOD_ROW}\n".encode(),
        [(2, "title contains a NUL character")],
    ),
    "a field over the csv limit": (
        f"{HEADER}\nGBA1B2400002,{'x' * 200_000},a@example.com,independent,,\n"
        f"{GOOD_ROW}\n".encode(),
        [
            (
                2,
                "the line cannot be read as CSV (a field longer than "
                f"{MAX_LINE_CHARS} characters or a quote left open)",
            )
        ],
    ),
    "a 1 MB single line": (
        ("x," * 500_000).encode(),
        [(1, "header is missing column(s): " + ", ".join(HEADER.split(",")))],
    ),
    "too many fields": (
        f"{HEADER}\nGBA1B2400002,T,a@example.com,independent,,,extra\n"
        f"{GOOD_ROW}\n".encode(),
        [(2, "7 fields, the header has 6")],
    ),
    "too few fields": (
        f"{HEADER}\nGBA1B2400002,T,a@example.com\n{GOOD_ROW}\n".encode(),
        [(2, "3 fields, the header has 6")],
    ),
    "non-ascii digits": (
        f"{HEADER}\nGBA1B2400002,T,a@example.com,independent,,٣٠٠\n"
        f"GBA1B2400003,T,a@example.com,independent,,²\n{GOOD_ROW}\n".encode(),
        [
            (2, "duration_ms “٣٠٠” is not a whole number"),
            (3, "duration_ms “²” is not a whole number"),
        ],
    ),
    "an e-mail longer than the column": (
        f"{HEADER}\nGBA1B2400002,T,{'a' * 250}@example.com,independent,,\n"
        f"{GOOD_ROW}\n".encode(),
        [(2, "artist_email is longer than 254 characters")],
    ),
}


@pytest.mark.parametrize(("data", "errors"), CSV_CASES.values(), ids=CSV_CASES)
def test_a_hostile_csv_gives_row_errors_by_line(data, errors):
    assert _errors(data, "csv") == errors


def test_the_rows_after_a_bad_csv_row_are_still_read():
    data = CSV_CASES["a field over the csv limit"][0]

    assert _valid(data, "csv") == [3]


JSONL_CASES = {
    "empty": (b"", []),
    "binary garbage": (b"\xff\xfe\x01\n", [(1, "the line is not valid UTF-8 text")]),
    "nul escape": (
        b'{"isrc": "GBA1B2400002", "title": "a\\u0000b"}\n',
        [(1, "title contains a NUL character")],
    ),
    "raw nul": (b'{"isrc": "x\x00"}\n', [(1, "the line contains a NUL character")]),
    "lone surrogate": (
        b'{"isrc": "GBA1B2400002", "title": "\\ud800"}\n',
        [(1, "title is not valid UTF-8 text")],
    ),
    "deeply nested": (
        b"[" * 50_000 + b"]" * 50_000 + b"\n",
        [(1, "not valid JSON (too deep or a number too long)")],
    ),
    "a nested value": (
        b'{"isrc": "GBA1B2400002", "title": [[["x"]]]}\n',
        [(1, "title must be text, not a list")],
    ),
    "wrong types": (
        b'{"isrc": 12}\n{"isrc": "GBA1B2400002", "title": true}\n'
        b'{"isrc": "GBA1B2400002", "title": "T", "artist_email": "a@example.com",'
        b' "license_class": "independent", "duration_ms": 1.5}\n',
        [
            (1, "isrc must be text, not a number"),
            (2, "title must be text, not true or false"),
            (3, "duration_ms must be text, not a number"),
        ],
    ),
    "a 1 MB single line": (
        b'{"title": "' + b"x" * 1_000_000 + b'"}\n' + GOOD_JSON.encode() + b"\n",
        [(1, f"longer than {MAX_LINE_CHARS} characters")],
    ),
    "a huge number": (
        b'{"duration_ms": ' + b"9" * 5000 + b"}\n",
        [(1, "not valid JSON (too deep or a number too long)")],
    ),
    "not an object": (
        b'"text"\n[1]\n',
        [(1, "not a JSON object"), (2, "not a JSON object")],
    ),
}


@pytest.mark.parametrize(("data", "errors"), JSONL_CASES.values(), ids=JSONL_CASES)
def test_a_hostile_jsonl_gives_row_errors_by_line(data, errors):
    assert _errors(data, "jsonl") == errors


def test_the_line_after_an_over_long_json_line_is_still_read():
    assert _valid(JSONL_CASES["a 1 MB single line"][0], "jsonl") == [2]


@pytest.mark.parametrize(
    ("data", "fmt"),
    [
        *((data, "csv") for data, _ in CSV_CASES.values()),
        *((data, "jsonl") for data, _ in JSONL_CASES.values()),
    ],
)
def test_the_command_and_the_http_import_never_raise_on_hostile_files(
    tmp_path, client, settings, invitation_queue, data, fmt
):
    # given a hostile file whose only good row (if any) is GBA1B2400001
    settings.REFRAIN_PLATFORM_TOKENS = [TOKEN]
    path = tmp_path / f"hostile.{fmt}"
    path.write_bytes(data)
    expected = _errors(data, fmt)
    before = database_state()

    # when it goes through the HTTP import
    response = client.post(
        "/api/v1/catalog/imports",
        data=data,
        content_type="text/csv" if fmt == "csv" else "application/x-ndjson",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    # then every bad row is reported by line (an empty body travels without
    # its Content-Type, which the endpoint asks for)
    if data:
        assert response.status_code == 200
        errors = response.json()["errors"]
        assert [(e["line"], e["reason"]) for e in errors] == expected
    else:
        assert response.status_code == 400
    good = _valid(data, fmt)
    assert Track.objects.count() == len(good)
    if not good:
        assert database_state() == before

    # and the command reads it the same way, exiting 1 only for rejected rows
    err = io.StringIO()
    try:
        call_command("import_catalog", str(path), stdout=io.StringIO(), stderr=err)
    except SystemExit as exit_:
        assert exit_.code == 1
        assert expected
    else:
        assert not expected
    assert err.getvalue().splitlines()[: len(expected)] == [
        f"line {line}: {reason}" for line, reason in expected[:50]
    ]
