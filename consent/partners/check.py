"""The eligibility check: up to 10,000 tracks for one use in one call.

Every answer is the track's stored eligibility (what every consumer is sent)
and the reason ``consent.policy.eligibility_reason`` gives for it; a track
that is not known is reported as unknown, never as eligible. The call is
logged as one row (``PartnerLookup``) that a worker folds into daily counts
per partner and track, so the log costs the check one INSERT.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from catalog.models import Track
from config.doorbell import ring_at_most_every
from consent.db import id_condition
from consent.models import ArtistDefault, Partner, PartnerLookup, TrackConsent
from consent.partners.feed import cursor_for, feed_position
from consent.policy import eligibility_reason, is_eligible, policy_current
from consent.tasks import fold_lookups as fold_lookups_task

MAX_ITEMS = 10_000
MAX_LISTED = 100  # offending items named in one error
# What the API takes (its schema says so): an ISRC compact or with its three
# hyphens, any case; a public track id. Stricter than the catalogue import,
# which also forgives spaces and an "ISRC" prefix.
ISRC_PATTERN = (
    r"^([A-Za-z]{2}[A-Za-z0-9]{3}[0-9]{7}"
    r"|[A-Za-z]{2}-[A-Za-z0-9]{3}-[0-9]{2}-[0-9]{5})$"
)
PUBLIC_ID_PATTERN = r"^[A-Za-z0-9_-]{1,22}$"
_ISRC = re.compile(ISRC_PATTERN)


def compact_isrc(value: str) -> str:
    """The stored form of an ISRC that matched ``ISRC_PATTERN``: what
    ``normalise_isrc`` gives for it (a test runs both), 4x faster."""
    return value.replace("-", "").upper()


_PUBLIC_ID = re.compile(PUBLIC_ID_PATTERN)
TRACKS = Track._meta.db_table
CONSENTS = TrackConsent._meta.db_table
DEFAULTS = ArtistDefault._meta.db_table


class CheckRefused(ValueError):
    """The request cannot be answered; ``items`` names the offending ones."""

    def __init__(self, code: str, message: str, items: list[dict] | None = None):
        super().__init__(message)
        self.code, self.message, self.items = code, message, items or []


@dataclass(frozen=True)
class CheckAnswer:
    use: str
    as_of: datetime
    policy_version: int
    changes_cursor: str
    items: list[dict]
    counts: dict[str, int]


def _parse(isrcs: list[str], track_ids: list[str]) -> tuple[list[str], list[str]]:
    """The ISRCs normalised and the public ids as given, or ``CheckRefused``
    naming every malformed item (the first hundred)."""
    total = len(isrcs) + len(track_ids)
    if total > MAX_ITEMS:
        raise CheckRefused(
            "too_many_items",
            f"Send at most {MAX_ITEMS:,} items in one call (this one has "
            f"{total:,}); split the list.",
        )
    wrong: list[dict] = []
    normalised = []
    for index, value in enumerate(isrcs):
        if _ISRC.match(value) is None:
            wrong.append({"field": "isrcs", "index": index, "value": value[:40]})
        else:
            normalised.append(compact_isrc(value))
    for index, value in enumerate(track_ids):
        if _PUBLIC_ID.match(value) is None:
            wrong.append({"field": "track_ids", "index": index, "value": value[:40]})
    if wrong:
        shown = ", ".join(f"{item['field']}[{item['index']}]" for item in wrong[:5])
        raise CheckRefused(
            "invalid_items",
            f"{len(wrong):,} item(s) are not valid identifiers ({shown}"
            f"{', …' if len(wrong) > 5 else ''}): an ISRC is CC-XXX-YY-NNNNN, "
            "a track id 1 to 22 of A-Z a-z 0-9 _ -.",
            wrong[:MAX_LISTED],
        )
    return normalised, list(track_ids)


def _rows(column: str, values: list[str], use: str) -> dict[str, tuple]:
    """value -> (track id, public id, isrc, version, class, decision, eligible,
    default) for the known ones, in one query."""
    if not values:
        return {}
    select = (
        "SELECT t.id, t.public_id, t.isrc, t.consent_version, t.license_class, "
        "c.decision, c.eligible, d.decision "
    )
    joins = (
        f"JOIN {CONSENTS} c ON c.track_id = t.id AND c.use = %s "
        f"LEFT JOIN {DEFAULTS} d ON d.artist_id = t.artist_id AND d.use = %s"
    )
    ordered = sorted(set(values))  # index probes in key order
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One text parameter (the values hold no comma: their patterns
            # say so), not a text[] that the driver builds item by item; and
            # index probes, not the parallel scan of every track the planner
            # otherwise picks for 10,000 values (2x slower, measured).
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute(
                f"{select}FROM unnest(string_to_array(%s, ',')) AS v(value) "  # noqa: S608 - model tables, fixed fragments
                f"JOIN {TRACKS} t ON t.{column} = v.value {joins}",
                [",".join(ordered), use, use],
            )
        else:
            condition, params = id_condition(f"t.{column}", ordered)
            cursor.execute(
                f"{select}FROM {TRACKS} t {joins} WHERE {condition}",  # noqa: S608
                [use, use, *params],
            )
        index = 2 if column == "isrc" else 1
        return {row[index]: row for row in cursor.fetchall()}


def eligibility_check(
    *, partner: Partner, use: str, isrcs: list[str], track_ids: list[str]
) -> CheckAnswer:
    """Answer for every item, in the order sent (ISRCs, then track ids)."""
    by_isrc, by_id = _parse(isrcs, track_ids)
    policy = policy_current()
    as_of = timezone.now()
    position = feed_position()
    known = {
        "isrc": _rows("isrc", by_isrc, use),
        "public_id": _rows("public_id", by_id, use),
    }
    items: list[dict] = []
    counts = {"eligible": 0, "not_eligible": 0, "unknown": 0}
    logged_ids: list[int] = []
    logged_answers: list[str] = []
    reasons: dict[tuple, str] = {}
    for field, column, sent, values in (
        ("isrc", "isrc", isrcs, by_isrc),
        ("track_id", "public_id", track_ids, by_id),
    ):
        rows = known[column]
        for given, value in zip(sent, values, strict=True):
            row = rows.get(value)
            if row is None:
                counts["unknown"] += 1
                items.append(
                    {
                        field: given,
                        "id": None,
                        "known": False,
                        "eligible": False,
                        "reason": "unknown",
                        "consent_version": None,
                    }
                )
                continue
            pk, public_id, _, version, license_class, decision, eligible, default = row
            rule = policy.rule(license_class, use)
            key = (rule, decision, default, eligible)
            reason = reasons.get(key)
            if reason is None:
                reason = eligibility_reason(rule, decision, default)
                if is_eligible(rule, decision, default) != eligible:
                    # the stored answer is being re-evaluated (a policy run)
                    reason = "policy_change_in_progress"
                reasons[key] = reason
            counts["eligible" if eligible else "not_eligible"] += 1
            items.append(
                {
                    field: given,
                    "id": public_id,
                    "known": True,
                    "eligible": bool(eligible),
                    "reason": reason,
                    "consent_version": version,
                }
            )
            logged_ids.append(pk)
            logged_answers.append("1" if eligible else "0")
    if logged_ids:
        lookup_record(
            partner=partner,
            use=use,
            track_ids=logged_ids,
            answers="".join(logged_answers),
        )
    return CheckAnswer(
        use=use,
        as_of=as_of,
        policy_version=policy.number,
        changes_cursor=cursor_for(position),
        items=items,
        counts=counts,
    )


def lookup_record(
    *, partner: Partner, use: str, track_ids: list[int], answers: str
) -> None:
    """One row for the whole call; the worker folds it (``lookups``)."""
    PartnerLookup.objects.create(
        partner=partner, use=use, track_ids=track_ids, answers=answers
    )
    ring_at_most_every(settings.REFRAIN_LOOKUP_DOORBELL_SECONDS, fold_lookups_task)
