"""Reading the public signals back as their readers would, for the drift
check: each format parsed by its own grammar (Structured Fields with
``http_sfv``, XML with its namespace, JSON), never by the encoders in
``formats``, so a fault in an encoder cannot hide itself.

What a format should say is derived from ``formats.MAPPING`` alone (the
published table): a key is allowed only when every use mapped to it is
permitted (``expected_keys``).
"""

import json
from dataclasses import dataclass, field
from functools import lru_cache
from xml.etree import ElementTree

import http_sfv

from consent.signals import formats
from consent.uses import USE_ORDER

RSL = f"{{{formats.RSL_NAMESPACE}}}"
TRACKS_DEFAULT_PATH = "/t/"
TRACKS_PATTERN = "/t/*"


@lru_cache(maxsize=128)
def _expected(answer: tuple[bool, ...], field_name: str) -> tuple:
    permitted = dict(zip(USE_ORDER, answer, strict=True))
    keys: dict[str, bool] = {}
    for use in USE_ORDER:
        key = getattr(formats.MAPPING[use], field_name)
        if key is not None:
            keys[key] = keys.get(key, True) and permitted[use]
    return tuple(keys.items())


def answer_of(permitted: formats.Permitted) -> tuple[bool, ...]:
    return tuple(bool(permitted[use]) for use in USE_ORDER)


def expected_keys(permitted: formats.Permitted, field_name: str) -> dict[str, bool]:
    """``{key: allowed}`` that a format (a string field of ``UseKeys``)
    should publish for this answer, in ``USE_ORDER`` of each key's first
    use; uses the format cannot express have no key."""
    return dict(_expected(answer_of(permitted), field_name))


def uses_of(field_name: str, key: str) -> list[str]:
    """The uses a format's key stands for (several where it merges them)."""
    return [u for u in USE_ORDER if getattr(formats.MAPPING[u], field_name) == key]


def tdm_reserved(permitted: formats.Permitted) -> bool:
    """Whether a TDMRep reservation should stand: unless every use it
    covers is permitted."""
    return not all(
        permitted[use] for use in USE_ORDER if formats.MAPPING[use].tdm_reservation
    )


@lru_cache(maxsize=256)
def read_dictionary(
    value: str, yes: str, no: str
) -> tuple[tuple[str, bool | None], ...]:
    """A Structured Fields dictionary of tokens ``yes``/``no`` (anything else,
    a string ``"n"`` or an upper-case key, is no preference: None). An
    unparsable value reads as no member at all."""
    parsed = http_sfv.Dictionary()
    try:
        parsed.parse(value.encode())
    except ValueError:
        return ()
    read = []
    for key, member in parsed.items():
        token = member.value if isinstance(member.value, http_sfv.Token) else None
        read.append((key, {yes: True, no: False}.get(token)))
    return tuple(read)


def read_aipref(value: str) -> dict[str, bool | None]:
    return dict(read_dictionary(value, "y", "n"))


def read_content_signal(value: str) -> dict[str, bool | None]:
    return dict(read_dictionary(value, "yes", "no"))


def read_cawg(assertion: dict) -> dict[str, bool | None]:
    """``{entry key: allowed}`` of a ``cawg.training-mining`` assertion;
    ``constrained`` without detail, or anything unknown, reads as not
    allowed (None for a value that is no ``use`` at all)."""
    if assertion.get("label") != formats.CAWG_LABEL:
        return {}
    entries = assertion.get("data", {}).get("entries", {})
    read: dict[str, bool | None] = {}
    for key, entry in entries.items():
        use = entry.get("use") if isinstance(entry, dict) else None
        read[key] = {"allowed": True, "notAllowed": False, "constrained": False}.get(
            use
        )
    return read


def read_rsl(document: bytes) -> dict[str, tuple[frozenset, frozenset]]:
    """``{content url: (permitted usage tokens, prohibited tokens)}`` in the
    RSL namespace; an unparsable document or another root reads as empty."""
    try:
        root = ElementTree.fromstring(document)  # noqa: S314 - our own rendering
    except ElementTree.ParseError:
        return {}
    if root.tag != f"{RSL}rsl":
        return {}
    read = {}
    for content in root.findall(f"{RSL}content"):
        kinds = []
        for kind in ("permits", "prohibits"):
            tokens: set[str] = set()
            for element in content.iterfind(f"{RSL}license/{RSL}{kind}"):
                if element.get("type") == "usage":
                    tokens.update((element.text or "").split())
            kinds.append(frozenset(tokens))
        read[content.get("url")] = (kinds[0], kinds[1])
    return read


def rsl_allows(permits: frozenset, prohibits: frozenset, token: str) -> bool | None:
    """A licence's answer for one usage token: prohibited wins; neither is no
    answer (None)."""
    if token in prohibits:
        return False
    return True if token in permits else None


@dataclass
class RobotsListing:
    """The ``User-agent: *`` group of a robots.txt: the ``/t/`` default and
    the per-track lines, by path."""

    license: str = ""
    default_usage: str = ""
    default_signal: str = ""
    usage: dict[str, str] = field(default_factory=dict)
    signal: dict[str, str] = field(default_factory=dict)

    def paths(self) -> set[str]:
        return set(self.usage) | set(self.signal)

    def usage_for(self, path: str) -> str:
        return self.usage.get(path, self.default_usage)

    def signal_for(self, path: str) -> str:
        return self.signal.get(path, self.default_signal)


def read_robots(text: str) -> RobotsListing:
    listing = RobotsListing()
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        rest = rest.strip()
        if name == "License":
            listing.license = rest
            continue
        if name not in ("Content-Usage", "Content-Signal"):
            continue
        path, _, value = rest.partition(" ")
        default = path == TRACKS_DEFAULT_PATH
        if name == "Content-Usage":
            if default:
                listing.default_usage = value
            else:
                listing.usage[path] = value
        elif default:
            listing.default_signal = value
        else:
            listing.signal[path] = value
    return listing


def read_tdmrep(document: bytes) -> dict[str, dict]:
    """``{location: rule}`` of a ``tdmrep.json`` (an unparsable file reads
    as no rules)."""
    try:
        rules = json.loads(document)
    except ValueError:
        return {}
    if not isinstance(rules, list):
        return {}
    return {
        rule.get("location"): rule
        for rule in rules
        if isinstance(rule, dict) and isinstance(rule.get("location"), str)
    }
