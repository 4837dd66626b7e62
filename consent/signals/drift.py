"""The nightly drift check (``manage.py check_signals``, beat's
``consent.check_signals``): every public signal of every track rendered in
process, as it is served, and compared with the ledger's current state.

The catalogue is read in chunks of ``CHUNK`` tracks by id (keyset): one
statement a chunk reads the tracks, their stored eligibility and the newest
ledger row of each use, in one snapshot. Nothing is read per track and
nothing is kept per track, so memory stays flat at any size. Per track:

* ``stored``: the stored eligibility (``TrackConsent``: what every signal
  and every consumer is given) against the ``new_eligible`` of the ledger's
  newest row per use (no row: not eligible, as every row starts);
* ``page``: the headers of ``/t/<id>/`` (``tdm-reservation``, ``tdm-policy``,
  ``Content-Usage``, ``Link``) and what its markup states;
* ``cawg``: the CAWG assertion (``training-mining.json`` and the page's data
  block); ``rsl``: the track's RSL licence;
* ``robots.txt``, ``tdmrep.json``, ``license.rsl``: first, the copy cached
  for the change feed's position against a fresh build; then what the fresh
  build says for each track (its own line or rule, else the ``/t/`` default):
  the default's refusal instead of the track's own answer is allowed only
  after the last track a document listed before it stopped at its size
  budget;
* ``tags``: the tagged copy of the track's audio for its current version,
  read back with mutagen; and no copy of an older version left once the
  worker has had ``STALE_COPY_AFTER`` to replace it.

Every format is read back by its own grammar (``consent.signals.readers``)
and must say exactly what the published table gives for the stored answer:
a merged key the most restrictive answer, nothing for a use it cannot
express. A track whose consent changed from ``SETTLE`` before the site
documents were built is not compared with them (the build and the chunk are
two snapshots); everything else about it is.
"""

from dataclasses import dataclass
from datetime import timedelta

import mutagen
from django.conf import settings
from django.db import connection
from django.utils import timezone

from catalog.models import Track
from consent.models import CheckRun, LedgerEntry, TrackConsent
from consent.partners.feed import eligible_bits_sql
from consent.signals import tags
from consent.signals.comparisons import (
    ANSWERS,
    DETAIL_LIMIT,
    SignalsReport,
    SiteCheck,
    said_words,
    track_documents_check,
)
from consent.signals.documents import track_path, track_signals
from consent.uses import USE_ORDER

CHUNK = 5000
# A track whose consent changed this long before the site documents were
# built, or since, is not compared with them (two snapshots).
SETTLE = timedelta(minutes=2)
# The worker has this long after a change to replace a track's tagged copy.
STALE_COPY_AFTER = timedelta(minutes=30)


def _check_tags(
    report: SignalsReport,
    *,
    track_id: int,
    public_id: str,
    version: int,
    audio_name: str,
    served: dict[str, bool],
    settled: bool,
    site: str,
) -> None:
    """The tagged copy of the current version read back, and no copy of an
    older version left once ``settled`` (no copy at all is fine: a download
    has it built)."""
    found = tags.copies(track_id)
    if not found:
        return
    label = f"track {public_id} tagged audio"
    fingerprint = tags.fingerprint(audio_name=audio_name)
    current = [c for c in found if (c.version, c.fingerprint) == (version, fingerprint)]
    for copy in current:
        try:
            if copy.failed:
                reason = copy.path.read_text(errors="replace").strip()[:120]
                report.mismatch("tags", f"{label} v{version}: not written ({reason})")
                continue
            read = tags.tags_read(copy.path)
        except FileNotFoundError:
            continue  # replaced by a newer version's copy meanwhile
        except mutagen.MutagenError as error:
            report.mismatch("tags", f"{label} v{version}: unreadable ({error})")
            continue
        report.copies += 1
        expected = tags.audio_tags(
            permitted=served, version=version, page_url=site + track_path(public_id)
        )
        for key, value in expected.items():
            if read.get(key) != value:
                report.mismatch(
                    "tags",
                    f"{label} v{version}: {key} is {read.get(key)!r}, the stored "
                    f"eligibility and version give {value!r}",
                )
    older = [c for c in found if c.version < version]
    if older and settled:
        state = "beside the current one" if current else "and none of it"
        report.mismatch(
            "tags",
            f"{label}: a copy of version {older[-1].version} is left {state}; "
            f"the track is at version {version}",
        )
    newer = [c for c in found if c.version > version]
    if newer:
        report.mismatch(
            "tags",
            f"{label}: a copy of version {newer[-1].version}, the track is at "
            f"version {version}",
        )


def _chunk_sql() -> str:
    """Up to %s tracks after id %s, each with its stored eligibility, the
    ledger's newest ``new_eligible`` per use (as bits), and whether its
    consent changed since each of two moments."""
    tracks = Track._meta.db_table
    consents = TrackConsent._meta.db_table
    ledger = LedgerEntry._meta.db_table
    return (
        f"WITH t AS (SELECT id, public_id, consent_version, audio_file FROM {tracks} "  # noqa: S608 - model tables and fixed fragments; values are parameters
        "WHERE id > %s ORDER BY id LIMIT %s), "
        "r AS (SELECT MIN(id) AS lo, MAX(id) AS hi FROM t), "
        "c AS (SELECT c.track_id, "
        f"{eligible_bits_sql('c.use', 'c.eligible')} AS bits, "
        "MAX(c.updated_at) AS changed_at "
        f"FROM {consents} c, r WHERE c.track_id BETWEEN r.lo AND r.hi "
        "GROUP BY c.track_id), "
        "h AS (SELECT l.track_id, l.use, MAX(l.consent_version) AS version "
        f"FROM {ledger} l, r WHERE l.track_id BETWEEN r.lo AND r.hi "
        "GROUP BY l.track_id, l.use), "
        "g AS (SELECT l.track_id, "
        f"{eligible_bits_sql('l.use', 'l.new_eligible')} AS bits FROM {ledger} l "
        "JOIN h ON h.track_id = l.track_id AND h.version = l.consent_version "
        "GROUP BY l.track_id) "
        "SELECT t.id, t.public_id, t.consent_version, t.audio_file, "
        "COALESCE(c.bits, 0), COALESCE(g.bits, 0), "
        "CASE WHEN c.changed_at >= %s THEN 1 ELSE 0 END, "
        "CASE WHEN c.changed_at >= %s THEN 1 ELSE 0 END "
        "FROM t LEFT JOIN c ON c.track_id = t.id LEFT JOIN g ON g.track_id = t.id "
        "ORDER BY t.id"
    )


def signals_differences(
    *, chunk: int = CHUNK, limit: int = DETAIL_LIMIT
) -> SignalsReport:
    """One pass of the check over every track (read-only)."""
    report = SignalsReport(limit=limit)
    site = settings.REFRAIN_SITE_URL.rstrip("/")
    started = timezone.now()
    sites = SiteCheck(report, site=site)
    adapt = connection.ops.adapt_datetimefield_value
    moments = [adapt(started - SETTLE), adapt(started - STALE_COPY_AFTER)]
    sql, after = _chunk_sql(), 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(sql, [after, chunk, *moments])
            rows = cursor.fetchall()
        for pk, public_id, version, audio, bits, ledger_bits, recent, unsettled in rows:
            served = ANSWERS[bits]
            if bits != ledger_bits:
                report.mismatch("stored", _stored_words(public_id, served, ledger_bits))
            track_documents_check(
                report, track_signals(public_id=public_id, permitted=served, site=site)
            )
            if recent:
                sites.skip(public_id)
            else:
                sites.track(pk, public_id, served)
            if audio:
                _check_tags(
                    report,
                    track_id=pk,
                    public_id=public_id,
                    version=version,
                    audio_name=audio,
                    served=served,
                    settled=not unsettled,
                    site=site,
                )
        report.tracks += len(rows)
        if len(rows) < chunk:
            break
        after = rows[-1][0]
    sites.finish()
    if report.not_compared:
        report.notes.append(
            f"{report.not_compared} tracks changed while the site documents were "
            "built: not compared with them"
        )
    return report


def _stored_words(public_id: str, served: dict, ledger_bits: int) -> str:
    ledger = ANSWERS[ledger_bits]
    differ = [
        f"{use} stored {said_words(served[use])}, ledger {said_words(ledger[use])}"
        for use in USE_ORDER
        if served[use] != ledger[use]
    ]
    return f"track {public_id} stored eligibility: {'; '.join(differ)}"


@dataclass
class SignalsCheckOutcome:
    report: SignalsReport
    run: CheckRun


def signals_check(
    *, triggered_by: str, chunk: int = CHUNK, detail_limit: int = DETAIL_LIMIT
) -> SignalsCheckOutcome:
    """Run the drift check and record it as a ``CheckRun`` (kind
    ``signals``): tracks checked, mismatches found, the first
    ``detail_limit`` named and any notes. Read-only otherwise (a mismatch
    needs a person to see why); safe to run at any time and twice. The run
    is saved when it starts (one that dies keeps no finish time)."""
    run = CheckRun.objects.create(
        kind=CheckRun.Kind.SIGNALS, triggered_by=triggered_by[:254]
    )
    report = signals_differences(chunk=chunk, limit=detail_limit)
    run.checked = report.tracks
    run.problems = report.problems
    run.details = [*report.notes, *report.details][:DETAIL_LIMIT]
    run.finished_at = timezone.now()
    run.save(update_fields=["checked", "problems", "details", "finished_at"])
    return SignalsCheckOutcome(report=report, run=run)
