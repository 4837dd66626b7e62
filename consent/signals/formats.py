"""Refrain's four uses in every outside format: the one mapping table, and the
pure functions that turn a track's answer per use into each format's answer.

A track's answer is ``permitted``: ``{use: bool}`` for every use in
``USE_ORDER``, its stored eligibility (what every consumer is told). Nothing
here reads the database: the public signals, the audio tags and the
drift check all encode through these functions.

The rules, from ``shared/docs/SIGNALS.md`` and the specifications:

* Where a format has one key for several of Refrain's uses, the key gets the
  most restrictive answer: allowed only when every use mapped to it is
  permitted (CAWG has one key per use; Content Signals and RSL merge both
  kinds of training into ``ai-train``; a TDMRep reservation covers both kinds
  of training and data mining).
* Where a format has no key for a use, ``MAPPING`` says ``None`` and the
  published table says so (``mapping_table_markdown``).
* ``search`` (AIPREF, Content Signals, RSL) is not one of Refrain's uses: the
  platform always says yes to it (``SEARCH_ALLOWED``), the product's choice.

AIPREF publishes ``train-ai`` only, as SIGNALS.md's table has it: its other
categories do not match one of Refrain's uses closely enough to speak for the
artist (an unknown key is ignored by readers anyway).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from xml.etree import ElementTree

import http_sfv

from consent.uses import USE_ORDER, USES, Use

Permitted = Mapping[str, bool]


@dataclass(frozen=True)
class UseKeys:
    """One use's key in each format (``None``: the format cannot express it)."""

    cawg: str  # CAWG training-and-data-mining assertion 1.1 entry
    aipref: str | None  # IETF AI preferences, vocab-08 category label
    content_signal: str | None  # contentsignals.org signal
    rsl: str | None  # RSL 1.0 usage token
    tdm_reservation: bool  # covered by a TDMRep reservation


MAPPING: dict[str, UseKeys] = {
    Use.GENAI_TRAINING: UseKeys(
        cawg="cawg.ai_generative_training",
        aipref="train-ai",
        content_signal="ai-train",
        rsl="ai-train",
        tdm_reservation=True,
    ),
    Use.AI_TRAINING: UseKeys(
        cawg="cawg.ai_training",
        aipref=None,  # train-ai is generative training only (vocab-08 4.1)
        content_signal="ai-train",
        rsl="ai-train",
        tdm_reservation=True,
    ),
    Use.AI_INFERENCE: UseKeys(
        cawg="cawg.ai_inference",
        aipref=None,
        content_signal="ai-input",
        rsl="ai-input",
        tdm_reservation=False,
    ),
    Use.DATA_MINING: UseKeys(
        cawg="cawg.data_mining",
        aipref=None,
        content_signal=None,
        rsl=None,  # only ai-all, which would also refuse ai-index
        tdm_reservation=True,
    ),
}

# The platform's own answer for search indexing, in every format that has it.
SEARCH_ALLOWED = True
CAWG_LABEL = "cawg.training-mining"
RSL_NAMESPACE = "https://rslstandard.org/rsl"
RSL_MEDIA_TYPE = "application/rsl+xml"


def _checked(permitted: Permitted) -> dict[str, bool]:
    """``permitted`` with exactly the four uses, as booleans (a missing use is
    a bug upstream, never a silent "no" or "yes")."""
    missing = [use for use in USE_ORDER if use not in permitted]
    if missing:
        raise ValueError(f"no answer for {', '.join(missing)}")
    return {use: bool(permitted[use]) for use in USE_ORDER}


def key_answers(permitted: Permitted, field: str) -> dict[str, bool]:
    """One format's answer per key (``field`` of ``UseKeys``), in
    ``USE_ORDER`` of each key's first use: a key is allowed only when every
    use mapped to it is permitted. Uses the format cannot express are left
    out."""
    answers: dict[str, bool] = {}
    for use, allowed in _checked(permitted).items():
        key = getattr(MAPPING[use], field)
        if key is not None:
            answers[key] = answers.get(key, True) and allowed
    return answers


# --- TDMRep (W3C Community Group final report, 2024) ---------------------------


def tdm_reserved(permitted: Permitted) -> bool:
    """Whether text and data mining rights are reserved: unless every use a
    reservation covers is permitted (so always when data mining is not)."""
    checked = _checked(permitted)
    return not all(checked[u] for u in USE_ORDER if MAPPING[u].tdm_reservation)


def tdm_headers(permitted: Permitted, *, policy_url: str) -> dict[str, str]:
    """The ``tdm-reservation`` header, and ``tdm-policy`` when reserved (the
    policy only means something for a reservation)."""
    if tdm_reserved(permitted):
        return {"tdm-reservation": "1", "tdm-policy": policy_url}
    return {"tdm-reservation": "0"}


def tdmrep_rule(location: str, permitted: Permitted, *, policy_url: str) -> dict:
    """One rule of ``/.well-known/tdmrep.json`` for the paths ``location``."""
    if tdm_reserved(permitted):
        return {"location": location, "tdm-reservation": 1, "tdm-policy": policy_url}
    return {"location": location, "tdm-reservation": 0}


# --- IETF AI preferences (vocab-08, attach-05) ---------------------------------


def aipref_dictionary(permitted: Permitted) -> http_sfv.Dictionary:
    """The usage preference as a Structured Fields dictionary of tokens
    ``y``/``n``: the mapped categories, then ``search``."""
    dictionary = http_sfv.Dictionary()
    answers = {**key_answers(permitted, "aipref"), "search": SEARCH_ALLOWED}
    for key, allowed in answers.items():
        dictionary[key] = http_sfv.Token("y" if allowed else "n")
    return dictionary


def content_usage(permitted: Permitted) -> str:
    """The ``Content-Usage`` header value, e.g. ``train-ai=n, search=y``."""
    return str(aipref_dictionary(permitted))


def robots_content_usage(path: str, permitted: Permitted) -> str:
    """A robots.txt ``Content-Usage`` rule for the paths under ``path``."""
    return f"Content-Usage: {path} {content_usage(permitted)}"


# --- Content Signals (contentsignals.org) ---------------------------------------


def content_signal_dictionary(permitted: Permitted) -> http_sfv.Dictionary:
    """The signals as a Structured Fields dictionary of tokens ``yes``/``no``:
    ``search``, then the mapped signals."""
    dictionary = http_sfv.Dictionary()
    answers = {"search": SEARCH_ALLOWED, **key_answers(permitted, "content_signal")}
    for key, allowed in answers.items():
        dictionary[key] = http_sfv.Token("yes" if allowed else "no")
    return dictionary


def content_signal(permitted: Permitted) -> str:
    """The signals, e.g. ``search=yes, ai-train=no, ai-input=no``."""
    return str(content_signal_dictionary(permitted))


def robots_content_signal(path: str, permitted: Permitted) -> str:
    """A robots.txt ``Content-Signal`` line scoped to the paths under ``path``."""
    return f"Content-Signal: {path} {content_signal(permitted)}"


# --- CAWG training-and-data-mining assertion 1.1 --------------------------------


def cawg_assertion(permitted: Permitted) -> dict:
    """The ``cawg.training-mining`` assertion, as a C2PA manifest lists it:
    every entry ``allowed`` or ``notAllowed`` (never ``constrained``)."""
    entries = {
        key: {"use": "allowed" if allowed else "notAllowed"}
        for key, allowed in key_answers(permitted, "cawg").items()
    }
    return {"label": CAWG_LABEL, "data": {"entries": entries}}


# --- RSL 1.0 --------------------------------------------------------------------


def rsl_usage(permitted: Permitted) -> tuple[list[str], list[str]]:
    """The usage tokens a licence permits (``search`` and the allowed ones)
    and prohibits (the refused ones)."""
    answers = key_answers(permitted, "rsl")
    permits = ["search"] if SEARCH_ALLOWED else []
    permits += [token for token, allowed in answers.items() if allowed]
    prohibits = [token for token, allowed in answers.items() if not allowed]
    return permits, prohibits


def rsl_content(url: str, permitted: Permitted) -> ElementTree.Element:
    """One ``<content url=…>`` with its licence, for an ``<rsl>`` root. Tokens
    are space-separated in one element per kind. (Unqualified: the root
    declares the RSL namespace as the default one.)"""
    content = ElementTree.Element("content", url=url)
    license_ = ElementTree.SubElement(content, "license")
    for tag, tokens in zip(("permits", "prohibits"), rsl_usage(permitted), strict=True):
        if tokens:
            element = ElementTree.SubElement(license_, tag, type="usage")
            element.text = " ".join(tokens)
    return content


def rsl_content_size(url: str, permitted: Permitted) -> int:
    """The bytes ``rsl_content`` adds to a document."""
    return len(ElementTree.tostring(rsl_content(url, permitted), encoding="utf-8"))


def rsl_root() -> ElementTree.Element:
    return ElementTree.Element("rsl", xmlns=RSL_NAMESPACE)


def rsl_bytes(root: ElementTree.Element) -> bytes:
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def rsl_document(contents: Iterable[tuple[str, Permitted]]) -> bytes:
    """An RSL document with one ``<content>`` per (url, permitted)."""
    root = rsl_root()
    root.extend(rsl_content(url, permitted) for url, permitted in contents)
    return rsl_bytes(root)


# --- The published table ----------------------------------------------------------

COLUMNS: tuple[tuple[str, str], ...] = (
    ("CAWG 1.1 (`cawg.training-mining`)", "cawg"),
    ("AIPREF vocab-08 (`Content-Usage`)", "aipref"),
    ("Content Signals (`Content-Signal`)", "content_signal"),
    ("RSL 1.0 usage", "rsl"),
    ("TDMRep", "tdm_reservation"),
)


def _cell(use: str, field: str) -> str:
    value = getattr(MAPPING[use], field)
    if field == "tdm_reservation":
        return "reservation (merged: most restrictive)" if value else "— (not covered)"
    if value is None:
        return "— (cannot express)"
    shared = [u for u in USE_ORDER if getattr(MAPPING[u], field) == value]
    merged = " (merged: most restrictive)" if len(shared) > 1 else ""
    return f"`{value}`{merged}"


def mapping_table_markdown() -> str:
    """``MAPPING`` as the Markdown table the README publishes."""
    lines = [
        "| Refrain use | " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|---" * (len(COLUMNS) + 1) + "|",
    ]
    for use in USE_ORDER:
        cells = " | ".join(_cell(use, field) for _, field in COLUMNS)
        lines.append(f"| `{use}` ({USES[use].name}) | {cells} |")
    yes = "yes" if SEARCH_ALLOWED else "no"
    permitted = "permitted" if SEARCH_ALLOWED else "prohibited"
    lines.append(
        f"| search (not a Refrain use: the platform's answer) | — "
        f"| `search={yes[0]}` | `search={yes}` | `search` {permitted} | — |"
    )
    return "\n".join(lines)
