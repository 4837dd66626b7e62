"""Readers of the public signals, as their specifications define them, and
the check that every format follows a track's eligibility; shared by the
signals tests."""

from xml.etree import ElementTree

import http_sfv

from consent.signals import formats
from consent.uses import USE_ORDER

RSL = "{https://rslstandard.org/rsl}"
RSL_TOKENS = {"all", "ai-all", "ai-train", "ai-input", "ai-index", "search"}
CAWG_KEYS = {
    "cawg.ai_generative_training",
    "cawg.ai_training",
    "cawg.ai_inference",
    "cawg.data_mining",
}
SITE = "https://refrain.example"


def read_aipref(value: str) -> dict[str, bool | None]:
    """An AIPREF usage preference: a Structured Fields dictionary whose values
    are the tokens ``y`` or ``n``; anything else (``"n"`` as a string, an
    upper-case key) is no preference (vocab-08 section 6)."""
    parsed = http_sfv.Dictionary()
    parsed.parse(value.encode())
    read = {}
    for key, member in parsed.items():
        token = member.value if isinstance(member.value, http_sfv.Token) else None
        read[key] = {"y": True, "n": False}.get(token)
    return read


def read_content_signal(value: str) -> dict[str, bool | None]:
    parsed = http_sfv.Dictionary()
    parsed.parse(value.encode())
    return {
        key: {"yes": True, "no": False}.get(
            member.value if isinstance(member.value, http_sfv.Token) else None
        )
        for key, member in parsed.items()
    }


def read_rsl(document: bytes) -> dict[str, tuple[set, set]]:
    """``{content url: (permitted tokens, prohibited tokens)}``, in the RSL
    namespace only."""
    root = ElementTree.fromstring(document)  # noqa: S314 - our own output
    assert root.tag == f"{RSL}rsl"
    read = {}
    for content in root.findall(f"{RSL}content"):
        licenses = content.findall(f"{RSL}license")
        assert len(licenses) == 1
        kinds = {}
        for kind in ("permits", "prohibits"):
            elements = licenses[0].findall(f"{RSL}{kind}")
            assert all(e.get("type") == "usage" for e in elements)
            kinds[kind] = {t for e in elements for t in (e.text or "").split()}
            assert kinds[kind] <= RSL_TOKENS
        read[content.get("url")] = (kinds["permits"], kinds["prohibits"])
    return read


def cawg_allowed(assertion: dict) -> dict[str, bool]:
    assert assertion["label"] == "cawg.training-mining"
    entries = assertion["data"]["entries"]
    assert set(entries) == CAWG_KEYS
    assert all(set(entry) == {"use"} for entry in entries.values())
    assert {entry["use"] for entry in entries.values()} <= {"allowed", "notAllowed"}
    return {key: entry["use"] == "allowed" for key, entry in entries.items()}


def uses_of(field: str, key: str) -> list[str]:
    return [u for u in USE_ORDER if getattr(formats.MAPPING[u], field) == key]


def check_formats_follow(permitted: dict[str, bool], signals) -> None:
    """Each format's answer per use: equal to ``permitted`` where the format
    has a key of its own for the use, the most restrictive answer of the
    uses where the key is shared, nothing where it has no key; never more
    permissive."""
    cawg = cawg_allowed(signals.cawg)
    aipref = read_aipref(signals.content_usage)
    signal = read_content_signal(signals.content_signal)
    (permits, prohibits) = read_rsl(signals.rsl)[signals.path]
    assert aipref["search"] is True and signal["search"] is True
    for use in USE_ORDER:
        keys = formats.MAPPING[use]
        assert cawg[keys.cawg] is permitted[use]
        for field, read in (("aipref", aipref), ("content_signal", signal)):
            key = getattr(keys, field)
            if key is not None:
                assert read[key] is all(permitted[u] for u in uses_of(field, key))
        if keys.rsl is not None:
            allowed = all(permitted[u] for u in uses_of("rsl", keys.rsl))
            assert (keys.rsl in permits, keys.rsl in prohibits) == (
                allowed,
                not allowed,
            )
        if keys.tdm_reservation and not permitted[use]:
            assert signals.headers["tdm-reservation"] == "1"
    covered = [u for u in USE_ORDER if formats.MAPPING[u].tdm_reservation]
    reserved = not all(permitted[u] for u in covered)
    assert signals.headers["tdm-reservation"] == ("1" if reserved else "0")
    assert ("tdm-policy" in signals.headers) is reserved
    assert signals.headers["Content-Usage"] == signals.content_usage


def parse_robots(text: str, site: str = SITE) -> dict[tuple[str, str], str]:
    """``{("usage" | "signal", path): value}`` of the ``User-agent: *`` group,
    after checking the file's shape (one group, a License line)."""
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"License: {site}/license.rsl"
    assert lines[1:3] == ["User-agent: *", "Allow: /"]
    read = {}
    for line in lines[3:]:
        name, _, rest = line.partition(": ")
        path, _, value = rest.partition(" ")
        kind = {"Content-Usage": "usage", "Content-Signal": "signal"}[name]
        assert path.startswith("/") and (kind, path) not in read
        read[(kind, path)] = value
    return read
