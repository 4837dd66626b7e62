"""What the e-mail about a policy change tells one artist: per use, how many
of their tracks became or stopped being eligible under the new version (the
first ``TRACKS_NAMED`` named by title, "and N more"), and the rule now in
force for those tracks. Reads only; ``policy_notify_artists`` sends.

Counted from the version's own ledger rows (source ``policy``, request id
``policy-<number>``): a row is written only where eligibility changed, one
per track and use, and never changes an answer.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count
from django.db.models.functions import Lower
from django.template.loader import render_to_string

from accounts.models import User
from catalog.models import LicenseClass, Track
from consent.models import LedgerEntry, PolicyRule, PolicyVersion, Rule, Source
from consent.receipt_mail import TRACKS_NAMED, named_tracks, quoted
from consent.uses import USE_ORDER, USES

RULE_NOW = {
    Rule.OPT_IN: "allowed only with your yes",
    Rule.OPT_OUT: "allowed unless you say no",
    Rule.PROHIBITED: "never allowed",
}


@dataclass(frozen=True)
class EligibilityChange:
    """Tracks of one artist whose eligibility for one use changed one way."""

    use: str
    eligible: bool
    tracks: int


def policy_rows(version: PolicyVersion):
    return LedgerEntry.objects.filter(
        source=Source.POLICY, request_id=f"policy-{version.number}"
    )


def policy_changes_by_artist(
    version: PolicyVersion,
) -> dict[int, tuple[list[EligibilityChange], set[tuple[str, str]]]]:
    """Per artist the version changed: the changes in use order (gains
    first), and the (licence class, use) pairs of the tracks that changed."""
    counted = (
        policy_rows(version)
        .values("track__artist_id", "track__license_class", "use", "new_eligible")
        .annotate(tracks=Count("track_id", distinct=True))
        .order_by()
    )
    totals: dict[int, dict[tuple[str, bool], int]] = {}
    classes: dict[int, set[tuple[str, str]]] = {}
    for row in counted.iterator(chunk_size=5000):
        artist_id = row["track__artist_id"]
        key = (row["use"], row["new_eligible"])
        per_artist = totals.setdefault(artist_id, {})
        per_artist[key] = per_artist.get(key, 0) + row["tracks"]
        classes.setdefault(artist_id, set()).add(
            (row["track__license_class"], row["use"])
        )
    return {
        artist_id: (
            [
                EligibilityChange(use, eligible, count)
                for (use, eligible), count in sorted(
                    changes.items(),
                    key=lambda item: (USE_ORDER.index(item[0][0]), not item[0][1]),
                )
            ],
            classes[artist_id],
        )
        for artist_id, changes in totals.items()
    }


def _change_line(
    version: PolicyVersion, artist: User, change: EligibilityChange, total: int
) -> str:
    titles = list(
        policy_rows(version)
        .filter(track__artist=artist, use=change.use, new_eligible=change.eligible)
        .order_by(Lower("track__title"), "track_id")
        .values_list("track__title", flat=True)[:TRACKS_NAMED]
    )
    verb = "became eligible" if change.eligible else "stopped being eligible"
    name = USES[change.use].name
    if total == 1 and change.tracks == 1:
        return f"{name}: your track {quoted(titles[0])} {verb}"
    how_many = (
        f"all {total} of your tracks"
        if change.tracks == total
        else f"{change.tracks} of your {total} tracks"
    )
    return f"{name}: {how_many} {verb}: {named_tracks(titles, change.tracks)}"


def _rule_lines(version: PolicyVersion, pairs: set[tuple[str, str]]) -> list[str]:
    rules = {
        (license_class, use): rule
        for license_class, use, rule in PolicyRule.objects.filter(
            version=version
        ).values_list("license_class", "use", "rule")
    }
    class_names = dict(LicenseClass.choices)
    return [
        f"{USES[use].name} of {str(class_names[license_class]).lower()} music: "
        f"{RULE_NOW[rules[(license_class, use)]]}"
        for license_class, use in sorted(
            pairs, key=lambda pair: (USE_ORDER.index(pair[1]), pair[0])
        )
        if (license_class, use) in rules
    ]


def policy_change_body(
    *,
    version: PolicyVersion,
    artist: User,
    changes: list[EligibilityChange],
    pairs: set[tuple[str, str]],
) -> str:
    total = Track.objects.filter(artist=artist).count()
    return render_to_string(
        "consent/email/policy_change.txt",
        {
            "user": artist,
            "version": version,
            "total": total,
            "lines": [
                _change_line(version, artist, change, total) for change in changes
            ],
            "rules": _rule_lines(version, pairs),
            "site": settings.REFRAIN_SITE_URL.rstrip("/"),
        },
    )
