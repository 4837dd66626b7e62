"""What each public signal says, compared with what it should say, for the
drift check (``consent.signals.drift``): one track's own documents
(``track_documents_check``) and the site-wide ones (``SiteCheck``).

Every format is read back by its own grammar (``consent.signals.readers``)
and must say exactly what the published table gives for the stored answer:
a merged key the most restrictive answer, nothing for a use it cannot
express. Each difference is one line in a ``SignalsReport``.
"""

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.db.models import Max

from catalog.models import Track
from consent.partners.feed import permitted
from consent.propagation import propagation_backlog
from consent.signals import readers
from consent.signals.documents import SITE_LICENSE_PATH, TrackSignals, track_path
from consent.signals.formats import RSL_MEDIA_TYPE, SEARCH_ALLOWED
from consent.signals.site import (
    DOCUMENTS,
    site_document_cached,
    site_documents_build,
    site_documents_version,
)
from consent.uses import USE_ORDER

DETAIL_LIMIT = 200
# Builds of the site documents tried before a difference is reported, and the
# pause between them (for a fan-out that is a moment behind).
BUILD_ATTEMPTS = 3
BUILD_RETRY_SECONDS = 2.0
KINDS = ("stored", "page", "cawg", "rsl", *DOCUMENTS, "tags")
ANSWERS = {bits: permitted(bits) for bits in range(1 << len(USE_ORDER))}
SEARCH = {"search": SEARCH_ALLOWED}


@dataclass
class SignalsReport:
    """What one pass found: counts per kind, the first mismatches in words."""

    limit: int = DETAIL_LIMIT
    tracks: int = 0
    copies: int = 0  # tagged copies read back
    not_compared: int = 0  # tracks left out of the site documents' comparison
    counts: Counter = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def mismatch(self, kind: str, line: str) -> None:
        self.counts[kind] += 1
        if len(self.details) < self.limit:
            self.details.append(line)

    @property
    def problems(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        found = "no mismatch"
        if self.problems:
            kinds = ", ".join(
                f"{kind} {self.counts[kind]}" for kind in KINDS if self.counts[kind]
            )
            found = f"{self.problems} mismatch{'es' if self.problems > 1 else ''} "
            found += f"({kinds})"
            if len(self.details) < self.problems:
                found += f", the first {len(self.details)} named"
        return (
            f"checked every public signal of {self.tracks} tracks "
            f"({self.copies} tagged copies read back): {found}"
        )


def said_words(value) -> str:
    return {True: "yes", False: "no"}.get(value, "nothing")


def _compare(
    report: SignalsReport,
    kind: str,
    where: str,
    read: Mapping[str, bool | None],
    expected: Mapping[str, bool],
    field_name: str,
    *,
    may_refuse: bool = False,
) -> None:
    """One mismatch per key whose answer differs (``may_refuse``: a "no"
    where the answer is yes is allowed, a document's default past its
    list)."""
    for key, allowed in expected.items():
        said = read.get(key)
        if said is allowed or (may_refuse and said is False):
            continue
        uses = ", ".join(readers.uses_of(field_name, key)) or "the platform's answer"
        report.mismatch(
            kind,
            f"{where}: {key} says {said_words(said)}, the stored eligibility gives "
            f"{said_words(allowed)} ({uses})",
        )


def track_documents_check(report: SignalsReport, signals: TrackSignals) -> None:
    """The track's own documents: page headers and markup, CAWG, RSL."""
    served, pid, headers = signals.permitted, signals.public_id, signals.headers
    reserved = readers.tdm_reserved(served)
    page = f"track {pid} page"
    wanted = "1" if reserved else "0"
    for said, what in (
        (headers.get("tdm-reservation"), "tdm-reservation header"),
        ("1" if signals.tdm_reserved else "0", "tdm-reservation meta"),
    ):
        if said != wanted:
            report.mismatch("page", f"{page}: {what} {said}, the stored gives {wanted}")
    if headers.get("tdm-policy") != (signals.license_url if reserved else None):
        report.mismatch("page", f"{page}: tdm-policy {headers.get('tdm-policy')}")
    link = headers.get("Link", "")
    if not link.startswith(f"<{signals.license_url}>;") or RSL_MEDIA_TYPE not in link:
        report.mismatch("page", f"{page}: Link header {link!r}")
    aipref = {**readers.expected_keys(served, "aipref"), **SEARCH}
    _compare(
        report,
        "page",
        f"{page} Content-Usage",
        readers.read_aipref(headers.get("Content-Usage", "")),
        aipref,
        "aipref",
    )
    signal = {**SEARCH, **readers.expected_keys(served, "content_signal")}
    _compare(
        report,
        "page",
        f"{page} Content-Signal",
        readers.read_content_signal(signals.content_signal),
        signal,
        "content_signal",
    )
    _compare(
        report,
        "cawg",
        f"track {pid} CAWG assertion",
        readers.read_cawg(signals.cawg),
        readers.expected_keys(served, "cawg"),
        "cawg",
    )
    content = readers.read_rsl(signals.rsl).get(signals.path)
    if content is None:
        report.mismatch("rsl", f"track {pid} RSL licence: no <content> for its page")
    else:
        _compare_rsl(report, "rsl", f"track {pid} RSL licence", content, served)


def _compare_rsl(report, kind, where, content, served, *, may_refuse=False) -> None:
    expected = {**SEARCH, **readers.expected_keys(served, "rsl")}
    read = {token: readers.rsl_allows(*content, token) for token in expected}
    _compare(report, kind, where, read, expected, "rsl", may_refuse=may_refuse)


class SiteCheck:
    """robots.txt, tdmrep.json and license.rsl: the cached copies against a
    fresh build, and each track's answer in the fresh build."""

    def __init__(self, report: SignalsReport, *, site: str):
        self.report = report
        self.site_license = f"{site}{SITE_LICENSE_PATH}"
        fresh = self._build()
        self.truncated = fresh.truncated
        self.robots = readers.read_robots(fresh.robots_txt)
        self.tdmrep = readers.read_tdmrep(fresh.tdmrep_json)
        self.rsl = readers.read_rsl(fresh.license_rsl)
        listed = {
            "robots.txt": self.robots.paths(),
            "tdmrep.json": {
                loc.removesuffix("*") for loc in self.tdmrep if loc != "/t/*"
            },
            "license.rsl": {url for url in self.rsl if url != "/t/*"},
        }
        self.listed = listed
        self.unseen = {name: set(paths) for name, paths in listed.items()}
        # The id of the last track each document lists (in id order).
        self.cutoff = {name: _last_id(paths) for name, paths in listed.items()}
        if self.robots.license != self.site_license:
            report.mismatch(
                "robots.txt", f"robots.txt: License {self.robots.license!r}"
            )

    def _build(self):
        """A fresh build, and the cached copies of the same change feed
        position compared with it. A copy is only comparable with a build of
        the same data: a build during which the feed moved is done again,
        and so is one that differs while changes wait to be fanned out (the
        feed moves a moment later); after ``BUILD_ATTEMPTS`` the difference
        is reported with what may explain it."""
        for attempt in range(1, BUILD_ATTEMPTS + 1):
            version = site_documents_version()
            cached = {
                name: site_document_cached(name, version=version) for name in DOCUMENTS
            }
            fresh = site_documents_build()
            moved = site_documents_version() != version
            differ = [
                name
                for name, attribute in DOCUMENTS.items()
                if cached[name] is not None
                and cached[name] != getattr(fresh, attribute)
            ]
            backlog = propagation_backlog() if differ else 0
            if not moved and not backlog:
                break
            if attempt < BUILD_ATTEMPTS:
                time.sleep(BUILD_RETRY_SECONDS)
        if moved:
            self.report.notes.append(
                "the change feed moved during each build of the site documents: "
                "their cached copies were compared with the last build"
            )
        position = version.rsplit(":", 1)[-1]
        waiting = f"; {backlog} changes wait to be fanned out" if backlog else ""
        for name in differ:
            difference = _first_difference(
                cached[name], getattr(fresh, DOCUMENTS[name])
            )
            self.report.mismatch(
                name,
                f"{name}: the copy cached for change feed position {position} "
                f"differs from a fresh build ({difference}{waiting})",
            )
        return fresh

    def track(self, track_id: int, public_id: str, served: dict) -> None:
        path = track_path(public_id)
        where = {name: f"{name} for track {public_id}" for name in DOCUMENTS}
        listed = {}
        for name in DOCUMENTS:
            listed[name] = path in self.listed[name]
            self.unseen[name].discard(path)

        def lenient(name: str) -> bool:
            return (
                not listed[name]
                and name in self.truncated
                and track_id > self.cutoff[name]
            )

        robots = self.robots
        aipref = {**readers.expected_keys(served, "aipref"), **SEARCH}
        signal = {**SEARCH, **readers.expected_keys(served, "content_signal")}
        for read, expected, field_name in (
            (readers.read_aipref(robots.usage_for(path)), aipref, "aipref"),
            (
                readers.read_content_signal(robots.signal_for(path)),
                signal,
                "content_signal",
            ),
        ):
            _compare(
                self.report,
                "robots.txt",
                where["robots.txt"],
                read,
                expected,
                field_name,
                may_refuse=lenient("robots.txt"),
            )
        rule = self.tdmrep.get(f"{path}*") or self.tdmrep.get("/t/*") or {}
        reserved = readers.tdm_reserved(served)
        said = {1: True, 0: False}.get(rule.get("tdm-reservation"))
        if said is not reserved and not (lenient("tdmrep.json") and said is True):
            self.report.mismatch(
                "tdmrep.json",
                f"{where['tdmrep.json']}: tdm-reservation {said_words(said)}, "
                f"the stored eligibility gives {said_words(reserved)}",
            )
        content = self.rsl.get(path) or self.rsl.get("/t/*")
        if content is None:
            self.report.mismatch("license.rsl", f"{where['license.rsl']}: no licence")
        else:
            _compare_rsl(
                self.report,
                "license.rsl",
                where["license.rsl"],
                content,
                served,
                may_refuse=lenient("license.rsl"),
            )

    def skip(self, public_id: str) -> None:
        """The track changed around the build: not compared with it."""
        path = track_path(public_id)
        for name in DOCUMENTS:
            self.unseen[name].discard(path)
        self.report.not_compared += 1

    def finish(self) -> None:
        for name in DOCUMENTS:
            for path in sorted(self.unseen[name]):
                self.report.mismatch(name, f"{name} lists {path}, which is no track")


def _last_id(paths: set[str]) -> int:
    if not paths:
        return 0
    public_ids = [path.removeprefix("/t/").removesuffix("/") for path in paths]
    found = Track.objects.filter(public_id__in=public_ids).aggregate(top=Max("id"))
    return found["top"] or 0


def _first_difference(cached, built) -> str:
    if isinstance(cached, bytes):
        cached = cached.decode(errors="replace")
    if isinstance(built, bytes):
        built = built.decode(errors="replace")
    old, new = cached.splitlines(), built.splitlines()
    for number, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            return f"line {number}: cached {a[:80]!r}, built {b[:80]!r}"
    return f"cached {len(old)} lines, built {len(new)}"
