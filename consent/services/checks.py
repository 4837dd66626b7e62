"""Consistency checks, each run recorded as a ``CheckRun`` for the audit view.

* ``consent_check``: the stored consent rows against the catalogue and the
  rules: one row per track and use, the copied artist and licence class equal
  to the track's, and the stored ``eligible`` equal to what the current
  policy gives for the track's answer (``consent.policy.eligible_sql``, the
  rule as SQL derived from ``is_eligible``). One set-based statement, flat
  memory whatever the catalogue's size; ``repair`` puts differences right
  through the services (ledger rows of source ``admin``) and checks again.
* ``ledger_check``: every track's hash chain and its head against the
  track's version (``consent.ledger``), and on demand every past anchor
  (``consent.services.anchors``).
"""

from array import array
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from catalog.models import Track
from consent.ledger import VerifyReport, verify_chains, verify_heads
from consent.models import (
    ArtistDefault,
    CheckRun,
    PolicyVersion,
    Source,
    TrackConsent,
)
from consent.policy import Policy, eligible_sql, policy_current
from consent.services.anchors import AnchorProblem, anchors_verify
from consent.services.eligibility import (
    eligibility_refresh,
    trackconsent_create_missing,
)
from consent.uses import USE_ORDER

# How many differences a run names (all are counted); a CheckRun keeps as
# many lines.
DETAIL_LIMIT = 200
# Tracks per repair transaction (the services lock each batch's tracks).
REPAIR_BATCH = 2000
REPAIR_NOTE = "check_consent repair"


@dataclass
class ConsentCheckReport:
    """What one pass of ``consent_check`` found."""

    policy_number: int = 0
    tracks: int = 0
    rows: int = 0  # consent rows there should be: tracks × uses
    missing: int = 0  # (track, use) pairs without their row
    copies: int = 0  # copied artists and licence classes unlike the track's
    eligibility: int = 0  # stored eligibility unlike the rules'
    # Tracks whose eligibility was not checked: the latest policy is still
    # being applied and has not reached them.
    skipped_tracks: int = 0
    skipped_reason: str = ""
    differences: list[str] = field(default_factory=list)  # the first ones, in words

    @property
    def problems(self) -> int:
        return self.missing + self.copies + self.eligibility

    def skipped(self) -> str:
        """Which tracks' eligibility was not checked and why ("" if none)."""
        if not self.skipped_tracks:
            return ""
        return (
            f"eligibility of {self.skipped_tracks} tracks not checked: "
            f"{self.skipped_reason}"
        )

    def summary(self) -> str:
        found = "no differences"
        if self.problems:
            kinds = [
                _count(count, one, many)
                for count, one, many in (
                    (self.missing, "missing row", "missing rows"),
                    (self.copies, "wrong copy", "wrong copies"),
                    (self.eligibility, "wrong eligibility", "wrong eligibility"),
                )
                if count
            ]
            found = (
                f"{_count(self.problems, 'difference', 'differences')} "
                f"({', '.join(kinds)})"
            )
            if len(self.differences) < self.problems:
                found += f", the first {len(self.differences)} named"
        return (
            f"checked {self.tracks} tracks ({self.rows} consent rows) against "
            f"policy v{self.policy_number}: {found}"
        )


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


@dataclass
class ConsentCheckOutcome:
    found: ConsentCheckReport
    run: CheckRun
    repaired_tracks: int = 0
    after: ConsentCheckReport | None = None  # the check after a repair

    @property
    def remaining(self) -> int:
        return (self.after or self.found).problems


def consent_check(
    *, triggered_by: str, repair: bool = False, detail_limit: int = DETAIL_LIMIT
) -> ConsentCheckOutcome:
    """Compare every track's stored consent rows with the catalogue and rules.

    Read-only unless ``repair``: then missing rows are created
    (``trackconsent_create_missing``) and wrong copies and eligibility are
    recomputed (``eligibility_refresh``), in batches of their own
    transactions, every eligibility change logged with source ``admin``;
    then everything is checked again. Safe to run at any time and twice: it
    locks nothing while checking, and a repair re-reads each track under its
    lock. The ``CheckRun`` row is saved when the run starts (a run that dies
    keeps no finish time) and completed at the end.
    """
    run = CheckRun.objects.create(
        kind=CheckRun.Kind.CONSENT, triggered_by=triggered_by[:254]
    )
    found = consent_differences(limit=detail_limit)
    outcome = ConsentCheckOutcome(found=found, run=run)
    notes = [found.skipped()] if found.skipped() else []
    if repair and found.problems:
        outcome.repaired_tracks = _repair(request_id=f"check-consent-{run.pk}")
        outcome.after = consent_differences(limit=detail_limit)
        notes.append(
            f"repaired {outcome.repaired_tracks} tracks; "
            f"after repair: {outcome.after.summary()}"
        )
    # At most DETAIL_LIMIT lines: the notes, and as many differences as fit
    # (those found first, then any left after a repair).
    room = DETAIL_LIMIT - len(notes)
    named = found.differences[:room]
    left = outcome.after.differences if outcome.after else []
    details = [*named, *notes, *left[: room - len(named)]]
    run.checked = found.rows
    run.problems = found.problems
    run.repaired = max(0, found.problems - outcome.remaining) if repair else 0
    run.details = details
    run.finished_at = timezone.now()
    run.save(
        update_fields=["checked", "problems", "repaired", "details", "finished_at"]
    )
    return outcome


def consent_differences(*, limit: int = DETAIL_LIMIT) -> ConsentCheckReport:
    """One pass of the check: counts of every difference, the first
    ``limit`` named, in one statement (one snapshot on PostgreSQL)."""
    policy = policy_current()
    checked_through, reason = _policy_progress(policy)
    report = ConsentCheckReport(policy_number=policy.number, skipped_reason=reason)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), COALESCE(SUM(CASE WHEN id > %s THEN 1 ELSE 0 END), 0) "  # noqa: S608 - fixed fragments, the derived rule expression and placeholders; values are parameters
            f"FROM {Track._meta.db_table}",
            [checked_through if checked_through is not None else -1],
        )
        report.tracks, skipped = cursor.fetchone()
        report.rows = report.tracks * len(USE_ORDER)
        report.skipped_tracks = skipped if checked_through is not None else 0
        flagged, params = _flagged_sql(policy, checked_through)
        cursor.execute(
            f"{flagged} SELECT public_id, use, artist_id, license_class, "  # noqa: S608 - fixed fragments, the derived rule expression and placeholders; values are parameters
            "artist_copy, class_copy, decision, eligible, default_decision, rule, "
            "expected, missing, artist_wrong, class_wrong, eligible_wrong, "
            "SUM(missing) OVER (), SUM(artist_wrong + class_wrong) OVER (), "
            "SUM(eligible_wrong) OVER () "
            "FROM flagged WHERE missing + artist_wrong + class_wrong "
            "+ eligible_wrong > 0 ORDER BY track_id, use_order LIMIT %s",
            [*params, limit],
        )
        rows = cursor.fetchall()
    for row in rows:
        report.differences += _words(row[:15])
    if rows:
        report.missing, report.copies, report.eligibility = map(int, rows[0][15:])
    report.differences = report.differences[:limit]
    return report


def _policy_progress(policy: Policy) -> tuple[int | None, str]:
    """While the latest policy is still being applied (``policy_apply``), the
    last track id it has reached and why later tracks are not checked;
    ``(None, "")`` once every track is done."""
    version = PolicyVersion.objects.filter(number=policy.number).values(
        "applied_at", "applied_through_track_id"
    )[0]
    if version["applied_at"] is not None:
        return None, ""
    through = version["applied_through_track_id"]
    return through, (
        f"policy v{policy.number} is still being applied (done through track id "
        f"{through}); the tracks after it are on the previous rules until it "
        "reaches them"
    )


def _flagged_sql(policy: Policy, checked_through: int | None) -> tuple[str, list]:
    """``WITH … flagged``: every (track, use) of the catalogue beside its
    stored row (if any), what the rules give and a 0/1 flag per difference."""
    uses = ", ".join(["(%s, %s)"] * len(USE_ORDER))
    rules = ", ".join(["(%s, %s, %s)"] * len(policy.rules))
    params = [
        value for position, use in enumerate(USE_ORDER) for value in (use, position)
    ]
    params += [
        value for (cls, use), rule in policy.rules.items() for value in (cls, use, rule)
    ]
    in_scope = (
        "" if checked_through is None else f"AND track_id <= {int(checked_through)} "
    )
    sql = (
        f"WITH u(use, use_order) AS (VALUES {uses}), "  # noqa: S608 - fixed fragments, the derived rule expression and placeholders; values are parameters
        f"p(license_class, use, rule) AS (VALUES {rules}), "
        "pairs AS (SELECT t.id AS track_id, t.public_id, u.use, u.use_order, "
        "t.artist_id, t.license_class, tc.id AS row_id, "
        "tc.artist_id AS artist_copy, tc.license_class AS class_copy, "
        "tc.decision, tc.eligible, d.decision AS default_decision, p.rule, "
        f"{eligible_sql('p.rule', 'tc.decision', 'd.decision')} AS expected "
        f"FROM {Track._meta.db_table} t CROSS JOIN u "
        f"LEFT JOIN {TrackConsent._meta.db_table} tc "
        "ON tc.track_id = t.id AND tc.use = u.use "
        "LEFT JOIN p ON p.license_class = t.license_class AND p.use = u.use "
        f"LEFT JOIN {ArtistDefault._meta.db_table} d "
        "ON d.artist_id = t.artist_id AND d.use = u.use), "
        "flagged AS (SELECT pairs.*, "
        "CASE WHEN row_id IS NULL THEN 1 ELSE 0 END AS missing, "
        "CASE WHEN artist_copy <> artist_id THEN 1 ELSE 0 END AS artist_wrong, "
        "CASE WHEN class_copy <> license_class THEN 1 ELSE 0 END AS class_wrong, "
        f"CASE WHEN row_id IS NOT NULL {in_scope}"
        "AND (expected IS NULL OR eligible <> expected) THEN 1 ELSE 0 END "
        "AS eligible_wrong FROM pairs)"
    )
    return sql, params


def _yes(value) -> str:
    return "yes" if value else "no"


def _words(row: tuple) -> list[str]:
    """One difference per line, naming the track, the use and both values."""
    (public_id, use, artist_id, license_class, artist_copy, class_copy, decision,
     eligible, default, rule, expected, missing, artist_wrong, class_wrong,
     eligible_wrong) = row  # fmt: skip
    head = f"track {public_id} {use}:"
    if missing:
        return [f"{head} no consent row"]
    lines = []
    if artist_wrong:
        lines.append(
            f"{head} copied artist is user {artist_copy}, the track's is user "
            f"{artist_id}"
        )
    if class_wrong:
        lines.append(
            f"{head} copied licence class is {class_copy}, the track's is "
            f"{license_class}"
        )
    if eligible_wrong:
        gives = "no answer" if expected is None else _yes(expected)
        lines.append(
            f"{head} stored eligible {_yes(eligible)}, the rules give {gives} "
            f"(rule {rule or 'none'}, decision {decision or 'none'}, "
            f"default {default or 'none'})"
        )
    return lines


def _repair(*, request_id: str) -> int:
    """Put every difference right through the services; returns the number
    of tracks repaired. Reads the tracks' ids first (8 bytes each), then
    repairs them in batches, each the services' own transaction."""
    policy = policy_current()
    checked_through, _ = _policy_progress(policy)
    flagged, params = _flagged_sql(policy, checked_through)
    missing, refresh = array("q"), array("q")
    with connection.chunked_cursor() as cursor:
        cursor.execute(
            f"{flagged} SELECT track_id, MAX(missing), "  # noqa: S608 - fixed fragments, the derived rule expression and placeholders; values are parameters
            "MAX(artist_wrong + class_wrong + eligible_wrong) FROM flagged "
            "GROUP BY track_id HAVING MAX(missing + artist_wrong + class_wrong "
            "+ eligible_wrong) > 0 ORDER BY track_id",
            params,
        )
        while batch := cursor.fetchmany(REPAIR_BATCH):
            for track_id, is_missing, is_wrong in batch:
                if is_missing:
                    missing.append(track_id)
                if is_wrong:
                    refresh.append(track_id)
    # Wrong copies and eligibility first, so their ledger rows carry this
    # repair's note; then the missing rows (their service logs those that
    # start eligible).
    for start in range(0, len(refresh), REPAIR_BATCH):
        eligibility_refresh(
            track_ids=list(refresh[start : start + REPAIR_BATCH]),
            source=Source.ADMIN,
            actor=None,
            note=REPAIR_NOTE,
            request_id=request_id,
        )
    for start in range(0, len(missing), REPAIR_BATCH):
        trackconsent_create_missing(
            track_ids=list(missing[start : start + REPAIR_BATCH]),
            source=Source.ADMIN,
        )
    return len(set(missing) | set(refresh))


# --- the ledger ----------------------------------------------------------------


@dataclass
class LedgerCheckOutcome:
    report: VerifyReport
    run: CheckRun
    anchors_checked: int | None = None  # None: anchors were not asked for
    anchor_problems: list[AnchorProblem] = field(default_factory=list)


def ledger_check(
    *, triggered_by: str, chunk: int = 5000, anchors: bool = False
) -> LedgerCheckOutcome:
    """Walk every track's hash chain (``verify_chains``), compare every
    track's version with its chain's head (``verify_heads``) and, with
    ``anchors``, recompute every past anchor (``anchors_verify``); record the
    run: rows checked, problems found, the first ``DETAIL_LIMIT`` named.
    Read-only (a break is evidence: nothing repairs it)."""
    run = CheckRun.objects.create(
        kind=CheckRun.Kind.LEDGER, triggered_by=triggered_by[:254]
    )
    report = verify_chains(chunk=chunk)
    verify_heads(report=report, chunk=chunk)
    outcome = LedgerCheckOutcome(report=report, run=run)
    if anchors:
        outcome.anchors_checked, outcome.anchor_problems = anchors_verify()
    problems = [*map(str, report.breaks), *map(str, outcome.anchor_problems)]
    run.checked = report.rows_checked
    run.problems = len(problems)
    run.details = problems[:DETAIL_LIMIT]
    run.finished_at = timezone.now()
    run.save(update_fields=["checked", "problems", "details", "finished_at"])
    return outcome
