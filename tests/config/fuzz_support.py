"""What the fuzz suite (test_fuzz.py) is made of: the hostile classes as
hypothesis strategies, the URL patterns of the project with their
placeholders, the forms found on a page, and a harness that sends one request,
checks the answer and the database, and keeps the tally."""

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote

from django.test import Client
from django.urls import URLResolver, get_resolver
from django.urls.resolvers import RegexPattern
from hypothesis import strategies as st

from tests.dbstate import database_state

# --- Hostile values ---------------------------------------------------------------
# Each class is a strategy. A value is text, bytes (sent as they are: not UTF-8)
# or a list (the same name sent several times: the wrong type for one value).

_ASCII = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8
)
_SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)

CLASSES: dict[str, st.SearchStrategy] = {
    "nul": st.builds(lambda a, b: f"{a}\x00{b}", _ASCII, _ASCII),
    "lone-surrogate": st.builds(lambda a, s: a + s, _ASCII, _SURROGATE),
    "invalid-utf8": st.builds(
        lambda a, b: a.encode() + b,
        _ASCII,
        st.sampled_from([b"\xff", b"\xc3(", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80"]),
    ),
    "very-long": st.integers(10_000, 60_000).map(lambda n: "x" * n),
    "non-ascii-digits": st.text(
        alphabet="²³¹٠١٢٣٤٥٦٧٨٩０１２３۴๓߀", min_size=1, max_size=6
    ),
    "extreme-number": st.one_of(
        st.integers(min_value=2**63, max_value=2**200).map(str),
        st.integers(max_value=-1).map(str),
        st.sampled_from(["0", "1e309", "NaN", "-0", "0x1F", "1_000", "9" * 5000]),
    ),
    "sql-html": st.sampled_from(
        [
            "' OR '1'='1",
            '"; DROP TABLE catalog_track; --',
            "' UNION SELECT NULL, NULL --",
            "<script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "%",
            "_",
            "\\",
            "../../../etc/passwd",
            "{{ 7*7 }}",
            "%s%s%n",
        ]
    ),
    "control": st.text(
        alphabet=st.characters(min_codepoint=1, max_codepoint=0x1F),
        min_size=1,
        max_size=8,
    ),
    "odd-unicode": st.sampled_from(
        ["\u202egnp.exe", "\ufeff", "\u200b", "e\u0301", "🎵" * 50, "\uffff", "İß"]
    ),
    "nested": st.integers(40, 5000).map(lambda n: "[" * n + "]" * n),
    "wrong-type": st.lists(_ASCII, min_size=2, max_size=3),
}
CLASS_NAMES = list(CLASSES)
HOSTILE_VALUES = st.fixed_dictionaries(CLASSES)


def wire(value) -> str:
    """A value percent-encoded byte for byte (a lone surrogate becomes bytes
    that are not UTF-8, as it would on the wire)."""
    if isinstance(value, list):
        return "/".join(wire(part) for part in value)
    if isinstance(value, bytes):
        return quote(value, safe="")
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def urlencoded(fields: dict[str, object]) -> str:
    parts = []
    for name, value in fields.items():
        for one in value if isinstance(value, list) else [value]:
            parts.append(f"{wire(name)}={wire(one)}")
    return "&".join(parts)


def as_text(value) -> str:
    """The value as text for a JSON body or a CSV cell."""
    if isinstance(value, list):
        return ",".join(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


# --- URL patterns ------------------------------------------------------------------

_ROUTE_PLACEHOLDER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>(?:[^()]|\([^()]*\))*)\)")


@dataclass(frozen=True)
class Pattern:
    """One URL pattern as a template: ``/tracks/{public_id}/``."""

    template: str
    names: tuple[str, ...]
    # A value that matches each placeholder's own syntax (a regex choice).
    choices: dict[str, str] = field(default_factory=dict, hash=False)

    def fill(self, values: dict[str, str]) -> str:
        path = self.template
        for name in self.names:
            path = path.replace("{" + name + "}", values[name], 1)
        return path


def _route_part(text: str) -> tuple[str, list[str], dict[str, str]]:
    names = [m["name"] for m in _ROUTE_PLACEHOLDER.finditer(text)]
    return _ROUTE_PLACEHOLDER.sub(lambda m: "{" + m["name"] + "}", text), names, {}


def _regex_part(text: str) -> tuple[str, list[str], dict[str, str]]:
    names, choices = [], {}

    def placeholder(match):
        names.append(match["name"])
        first = match["body"].split("|")[0]
        if re.fullmatch(r"[\w-]+", first):
            choices[match["name"]] = first
        return "{" + match["name"] + "}"

    template = _REGEX_GROUP.sub(placeholder, text.lstrip("^").rstrip("$"))
    return template.replace("\\", ""), names, choices


def url_patterns() -> list[Pattern]:
    """Every pattern of the project, walked from the root resolver."""
    found: list[Pattern] = []

    def walk(patterns, template: str, names: list[str], choices: dict[str, str]):
        for entry in patterns:
            part = str(entry.pattern)
            parse = (
                _regex_part if isinstance(entry.pattern, RegexPattern) else _route_part
            )
            text, more, more_choices = parse(part)
            if isinstance(entry, URLResolver):
                walk(
                    entry.url_patterns,
                    template + text,
                    names + more,
                    {**choices, **more_choices},
                )
            else:
                found.append(
                    Pattern(
                        "/" + template + text,
                        tuple(names + more),
                        {**choices, **more_choices},
                    )
                )

    walk(get_resolver().url_patterns, "", [], {})
    return found


# --- Forms -------------------------------------------------------------------------


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: set[str] = field(default_factory=set)

    def key(self) -> tuple:
        return (self.action, self.method, tuple(sorted(self.fields)))


class FormParser(HTMLParser):
    """The forms of a page: their action, method, and each named field with
    the value a person would send by default."""

    def __init__(self, page_path: str):
        super().__init__()
        self.page_path = page_path
        self.forms: list[Form] = []
        self._select: str | None = None
        self._chosen: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            action = attrs.get("action") or self.page_path
            self.forms.append(Form(action, (attrs.get("method") or "get").lower()))
            self._chosen = set()
            return
        if tag == "option" and self.forms and self._select:
            # The first option, or the one marked selected.
            fields = self.forms[-1].fields
            if "selected" in attrs or self._select not in self._chosen:
                fields[self._select] = attrs.get("value") or ""
                self._chosen.add(self._select)
            return
        if not self.forms or not attrs.get("name"):
            return
        form, name = self.forms[-1], attrs["name"]
        kind = (attrs.get("type") or "").lower()
        if tag == "button" or kind == "submit":
            form.buttons.add(name)
        elif tag == "select":
            self._select = name
            form.fields.setdefault(name, "")
        elif kind in ("checkbox", "radio"):
            if "checked" in attrs or name not in form.fields:
                form.fields[name] = attrs.get("value", "on")
        elif tag in ("input", "textarea"):
            form.fields.setdefault(name, attrs.get("value") or "")

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def forms_of(html: str, page_path: str) -> list[Form]:
    parser = FormParser(page_path)
    parser.feed(html)
    return parser.forms


# --- The harness -------------------------------------------------------------------


@dataclass
class Persona:
    name: str
    client: Client
    user: object | None = None

    def ensure_signed_in(self) -> None:
        """Sign in again after a request that signed out (logout is fuzzed too)."""
        if self.user is not None and "_auth_user_id" not in self.client.session:
            self.client.force_login(self.user)


@dataclass
class Tally:
    """What the suite sent and what came back."""

    requests: int = 0
    rejected: int = 0
    classes: set[str] = field(default_factory=set)
    patterns: set[str] = field(default_factory=set)
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> str:
        server_errors = sum(n for code, n in self.statuses.items() if code >= 500)
        return (
            f"{self.requests} requests, {len(self.classes)} classes, "
            f"{len(self.patterns)} URL patterns, {self.rejected} rejected (4xx), "
            f"{server_errors} x 5xx in {time.monotonic() - self.started:.1f}s"
        )


# /readyz answers 503 by design when a dependency is down; nothing else may.
_ALLOWED_5XX = {("/readyz", 503)}


def send(
    tally: Tally,
    persona: Persona,
    method: str,
    path: str,
    *,
    hostile_class: str,
    pattern: str,
    body: bytes | str = b"",
    content_type: str = "application/x-www-form-urlencoded",
    headers: dict | None = None,
    rejected: Callable | None = None,
):
    """One request: no 5xx, and a 4xx leaves the product's tables unchanged.

    ``rejected(response)`` says when an answer that is not a 4xx still
    rejected the input (an import whose every row was refused)."""
    persona.ensure_signed_in()
    before = database_state()
    response = persona.client.generic(
        method, path, data=body, content_type=content_type, headers=headers or {}
    )
    status = response.status_code
    tally.requests += 1
    tally.classes.add(hostile_class)
    tally.patterns.add(pattern)
    tally.statuses[status] += 1
    where = f"{persona.name} {method} {path[:160]!r} ({hostile_class})"
    if status >= 500 and (path.split("?")[0], status) not in _ALLOWED_5XX:
        error = getattr(response, "exc_info", None)
        tally.failures.append(f"{where}: {status} {error and repr(error[1])[:300]}")
    elif 400 <= status < 500 or (rejected is not None and rejected(response)):
        tally.rejected += 1
        after = database_state()
        if after != before:
            changed = sorted(t for t in after if after[t] != before.get(t))
            tally.failures.append(f"{where}: {status} but changed {changed}")
    return response
