"""What Refrain publishes, rendered from answers alone (no database, no cache):
every signal of one track, and the site-wide documents (robots.txt,
``/.well-known/tdmrep.json``, ``/license.rsl``).

The drift check and the audio tags render through these same functions, in
process, so what they compare is byte for byte what is served.

The site-wide documents state one default for ``/t/``, the most restrictive
answer (``SITE_DEFAULT``: no use permitted), and list only the tracks whose
answer differs from it. The default cannot be anything else: under every rule
a track can be refused (an opt-out track whose artist says no, any
prohibited or opt-in track without a yes), and a refusal left off a list
would read as permission, while a permission left off reads as a refusal,
which the rules allow (a format may be more restrictive than eligibility,
never less). So a document that reaches its size budget
(``REFRAIN_SIGNALS_MAX_BYTES``; robots.txt parsers read 500 KiB) stops
listing, and the tracks after that keep the default there; each track's own
page carries its precise answer in its headers and links its own licence.
"""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

from consent.signals import formats
from consent.uses import USE_ORDER

SITE_DEFAULT: dict[str, bool] = dict.fromkeys(USE_ORDER, False)
TRACKS_PATH = "/t/"
TRACKS_PATTERN = "/t/*"  # TDMRep and RSL patterns (RFC 9309 matching)
SITE_LICENSE_PATH = "/license.rsl"


def track_path(public_id: str) -> str:
    return f"{TRACKS_PATH}{public_id}/"


@dataclass(frozen=True)
class TrackSignals:
    """Every public signal of one track. ``site`` is the absolute origin
    (``REFRAIN_SITE_URL``), ``permitted`` the track's eligibility per use."""

    public_id: str
    permitted: Mapping[str, bool]
    site: str

    @property
    def path(self) -> str:
        return track_path(self.public_id)

    @property
    def page_url(self) -> str:
        return f"{self.site}{self.path}"

    @property
    def license_url(self) -> str:
        return f"{self.page_url}license.rsl"

    @property
    def cawg_url(self) -> str:
        return f"{self.page_url}training-mining.json"

    @cached_property
    def tdm_reserved(self) -> bool:
        return formats.tdm_reserved(self.permitted)

    @cached_property
    def content_usage(self) -> str:
        return formats.content_usage(self.permitted)

    @cached_property
    def content_signal(self) -> str:
        return formats.content_signal(self.permitted)

    @cached_property
    def cawg(self) -> dict:
        return formats.cawg_assertion(self.permitted)

    @cached_property
    def rsl(self) -> bytes:
        return formats.rsl_document([(self.path, self.permitted)])

    @cached_property
    def headers(self) -> dict[str, str]:
        """The response headers of the track's page."""
        return {
            **formats.tdm_headers(self.permitted, policy_url=self.license_url),
            "Content-Usage": self.content_usage,
            "Link": (
                f'<{self.license_url}>; rel="license"; type="{formats.RSL_MEDIA_TYPE}"'
            ),
        }


def track_signals(
    *, public_id: str, permitted: Mapping[str, bool], site: str
) -> TrackSignals:
    """``TrackSignals`` of one track (``site``: the origin, a trailing slash is
    dropped)."""
    return TrackSignals(
        public_id=public_id, permitted=dict(permitted), site=site.rstrip("/")
    )


# --- The site-wide documents -------------------------------------------------------

ROBOTS_PREAMBLE = """\
# Refrain publishes each track's AI-use answer on its artist's behalf.
# Under /t/ nothing may be used for AI unless a line below, or the track's
# own page (/t/<id>/: Content-Usage and tdm-reservation headers, an RSL
# licence), says otherwise: the page's answer is the precise one.
# Content-Usage: IETF AI preferences (draft-ietf-aipref-vocab, -attach).
# Content-Signal: contentsignals.org (search, ai-input, ai-train). A "no"
# is an express reservation of rights under Article 4 of Directive (EU)
# 2019/790.
"""
TRUNCATED = (
    "# The list stops here at the size limit; the tracks after it keep the"
    " default above and are answered on their own pages."
)


@dataclass
class _Budget:
    """Bytes left in one document: a track is listed while it fits; the first
    that does not closes the list."""

    left: int
    full: bool = False

    def take(self, size: int) -> bool:
        if self.full or size > self.left:
            self.full = True
            return False
        self.left -= size
        return True


@dataclass(frozen=True)
class SiteDocuments:
    robots_txt: str
    tdmrep_json: bytes
    license_rsl: bytes
    # The documents whose list stopped at the size budget ("robots.txt",
    # "tdmrep.json", "license.rsl"): the tracks after the last one listed
    # keep the default there.
    truncated: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Encoded:
    usage: str
    signal: str
    reserved: bool
    rsl_usage: tuple
    rsl_size: int  # of its <content> with an empty url


class SiteDocumentsBuilder:
    """Builds the three site-wide documents from tracks fed in a stable order
    (by track id): a track goes into a document only where its answer
    differs from the default, while the document has room. ``accepting``
    turns false once every document is full."""

    def __init__(self, *, site: str, max_bytes: int):
        self.site = site.rstrip("/")
        self.site_license_url = f"{self.site}{SITE_LICENSE_PATH}"
        self.default = self._encode(SITE_DEFAULT)
        self.robots_head = self._robots_head()
        self.tdmrep_default = json.dumps(
            formats.tdmrep_rule(
                TRACKS_PATTERN, SITE_DEFAULT, policy_url=self.site_license_url
            )
        )
        self.robots_lines: list[str] = []
        self.tdmrep_rules: list[str] = []
        self.rsl_tracks: list[tuple[str, dict]] = []
        # What the frame of each document takes is set aside first.
        self.robots = _Budget(
            max_bytes - len(self.robots_head.encode()) - len(TRUNCATED) - 1
        )
        self.tdmrep = _Budget(max_bytes - len(self.tdmrep_default) - 8)
        self.rsl = _Budget(
            max_bytes - len(formats.rsl_document([(TRACKS_PATTERN, SITE_DEFAULT)]))
        )

    @property
    def accepting(self) -> bool:
        return not (self.robots.full and self.tdmrep.full and self.rsl.full)

    @staticmethod
    @lru_cache(maxsize=32)
    def _encode_answer(answer: tuple[bool, ...]) -> _Encoded:
        # 16 possible answers: each is encoded once.
        permitted = dict(zip(USE_ORDER, answer, strict=True))
        return _Encoded(
            usage=formats.content_usage(permitted),
            signal=formats.content_signal(permitted),
            reserved=formats.tdm_reserved(permitted),
            rsl_usage=formats.rsl_usage(permitted),
            rsl_size=formats.rsl_content_size("", permitted),
        )

    def _encode(self, permitted: Mapping[str, bool]) -> _Encoded:
        return self._encode_answer(tuple(bool(permitted[use]) for use in USE_ORDER))

    def add(self, public_id: str, permitted: Mapping[str, bool]) -> None:
        encoded, default = self._encode(permitted), self.default
        path = track_path(public_id)
        lines = []
        if encoded.usage != default.usage:
            lines.append(f"Content-Usage: {path} {encoded.usage}\n")
        if encoded.signal != default.signal:
            lines.append(f"Content-Signal: {path} {encoded.signal}\n")
        if lines and self.robots.take(sum(len(line) for line in lines)):
            self.robots_lines.extend(lines)
        if encoded.reserved != default.reserved:
            rule = json.dumps(
                formats.tdmrep_rule(
                    f"{path}*", permitted, policy_url=self.site_license_url
                )
            )
            if self.tdmrep.take(len(rule) + 2):
                self.tdmrep_rules.append(rule)
        if encoded.rsl_usage != default.rsl_usage and self.rsl.take(
            encoded.rsl_size + len(path)
        ):
            self.rsl_tracks.append((path, dict(permitted)))

    def build(self) -> SiteDocuments:
        return SiteDocuments(
            robots_txt=self._robots_txt(),
            tdmrep_json=self._tdmrep_json(),
            license_rsl=formats.rsl_document(
                [*self.rsl_tracks, (TRACKS_PATTERN, SITE_DEFAULT)]
            ),
            truncated=frozenset(
                name
                for name, budget in (
                    ("robots.txt", self.robots),
                    ("tdmrep.json", self.tdmrep),
                    ("license.rsl", self.rsl),
                )
                if budget.full
            ),
        )

    def _robots_head(self) -> str:
        return "".join(
            [
                ROBOTS_PREAMBLE,
                f"License: {self.site_license_url}\n",
                "\n",
                "User-agent: *\n",
                "Allow: /\n",
                formats.robots_content_usage(TRACKS_PATH, SITE_DEFAULT) + "\n",
                formats.robots_content_signal(TRACKS_PATH, SITE_DEFAULT) + "\n",
            ]
        )

    def _robots_txt(self) -> str:
        tail = [TRUNCATED + "\n"] if self.robots.full else []
        return "".join([self.robots_head, *self.robots_lines, *tail])

    def _tdmrep_json(self) -> bytes:
        # The tracks' rules first, the /t/* default last: a reader that takes
        # the first matching rule and one that takes the longest agree.
        rules = [*self.tdmrep_rules, self.tdmrep_default]
        return ("[\n" + ",\n".join(rules) + "\n]\n").encode()


def site_documents(
    tracks: Iterable[tuple[str, Mapping[str, bool]]], *, site: str, max_bytes: int
) -> SiteDocuments:
    """The three site-wide documents from ``(public id, permitted)`` in id
    order (only tracks that permit something need be given)."""
    builder = SiteDocumentsBuilder(site=site, max_bytes=max_bytes)
    for public_id, permitted in tracks:
        if not builder.accepting:
            break
        builder.add(public_id, permitted)
    return builder.build()
