"""Acknowledgements: a partner saying it acted on a track's consent.

A webhook's 2xx only means "received"; an acknowledgement means the partner
applied the decision of a consent version, or removed the track from a
dataset. Every *withdrawal* (a ledger row that made a use of a track no
longer permitted) must be acknowledged by every partner that existed when it
happened, within the partner's ``ack_days``, with a version at least the
withdrawal's. A withdrawal stops being owed when a later change permits the
use again or withdraws it anew (then the newer one is owed).
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from catalog.isrc import looks_like_isrc, normalise_isrc
from catalog.models import Track
from consent.models import Acknowledgement, LedgerEntry, Partner, TrackConsent
from consent.uses import USE_ORDER


class AcknowledgementRefused(ValueError):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def track_by_identifier(identifier: str) -> Track | None:
    """The track an ISRC or a public id names, or None."""
    identifier = identifier.strip()
    if looks_like_isrc(identifier):
        track = Track.objects.filter(isrc=normalise_isrc(identifier)).first()
        if track is not None:
            return track
    return Track.objects.filter(public_id=identifier).first()


def acknowledgement_record(
    *,
    partner: Partner,
    track: str,
    use: str,
    consent_version: int,
    status: str,
    dataset: str,
    note: str = "",
) -> Acknowledgement:
    """Record it, or raise ``AcknowledgementRefused`` and write nothing."""
    found = track_by_identifier(track)
    if found is None:
        raise AcknowledgementRefused(
            404, "unknown_track", f"No track has the ISRC or id “{track[:40]}”."
        )
    if use not in USE_ORDER:
        raise AcknowledgementRefused(
            400, "unknown_use", f"The use is one of {', '.join(USE_ORDER)}."
        )
    if consent_version > found.consent_version:
        raise AcknowledgementRefused(
            409,
            "version_ahead",
            f"The track's consent version is {found.consent_version}; "
            f"{consent_version} has not happened.",
        )
    dataset = dataset.strip()
    if not dataset:
        raise AcknowledgementRefused(
            400, "dataset_required", "Name the dataset and its version."
        )
    return Acknowledgement.objects.create(
        partner=partner,
        track=found,
        use=use,
        consent_version=consent_version,
        status=status,
        dataset=dataset,
        note=note.strip(),
    )


def withdrawals_owed(partner: Partner) -> QuerySet[LedgerEntry]:
    """The withdrawals ``partner`` has yet to acknowledge (oldest first)."""
    later = LedgerEntry.objects.filter(
        track=OuterRef("track"),
        use=OuterRef("use"),
        consent_version__gt=OuterRef("consent_version"),
        old_eligible=True,
        new_eligible=False,
    )
    acknowledged = Acknowledgement.objects.filter(
        partner=partner,
        track=OuterRef("track"),
        use=OuterRef("use"),
        consent_version__gte=OuterRef("consent_version"),
    )
    still_withdrawn = TrackConsent.objects.filter(
        track=OuterRef("track"), use=OuterRef("use"), eligible=False
    )
    return (
        LedgerEntry.objects.filter(
            old_eligible=True,
            new_eligible=False,
            created_at__gte=partner.created_at,
        )
        .filter(Exists(still_withdrawn))
        .exclude(Exists(later))
        .exclude(Exists(acknowledged))
        .order_by("created_at", "track_id")
    )


def deadline_cutoff(partner: Partner, now: datetime | None = None) -> datetime:
    """Withdrawals before this time are overdue for ``partner``."""
    return (now or timezone.now()) - timedelta(days=partner.ack_days)


def withdrawals_overdue(partner: Partner, now: datetime | None = None):
    return withdrawals_owed(partner).filter(
        created_at__lt=deadline_cutoff(partner, now)
    )


def overdue_track_condition(now: datetime | None = None) -> Q:
    """A ``Track`` filter: some partner's acknowledgement of a withdrawal of
    the track is overdue."""
    condition = Q(pk__in=[])
    for partner in Partner.objects.all():
        condition |= Q(
            Exists(withdrawals_overdue(partner, now).filter(track=OuterRef("pk")))
        )
    return condition


@dataclass(frozen=True)
class PartnerStanding:
    """What one partner did about one track, for the artist's track page."""

    partner: str
    acknowledgements: list[Acknowledgement]
    owed: list[tuple[LedgerEntry, datetime, bool]]  # withdrawal, due, overdue


def acknowledgements_for_track(track: Track, now: datetime | None = None):
    """Per partner: its acknowledgements of the track (newest first) and the
    withdrawals it still owes, with their due dates."""
    now = now or timezone.now()
    acks: dict[int, list[Acknowledgement]] = {}
    for ack in Acknowledgement.objects.filter(track=track).order_by("-created_at"):
        acks.setdefault(ack.partner_id, []).append(ack)
    standings = []
    for partner in Partner.objects.all():
        owed = [
            (entry, due, due < now)
            for entry in withdrawals_owed(partner).filter(track=track)
            for due in [entry.created_at + timedelta(days=partner.ack_days)]
        ]
        if owed or acks.get(partner.pk):
            standings.append(
                PartnerStanding(
                    partner=partner.name,
                    acknowledgements=acks.get(partner.pk, []),
                    owed=owed,
                )
            )
    return standings


def withdrawals_owed_for_track(
    track: Track, now: datetime | None = None
) -> list[tuple[Partner, LedgerEntry, datetime, bool]]:
    """Every partner's withdrawals of ``track`` still to acknowledge, as
    (partner, withdrawal, due, overdue), by partner name, oldest first.

    The same rows as ``withdrawals_owed(partner).filter(track=track)`` for
    each partner (a test holds the two equal), in at most three queries
    whatever the number of partners: the track's withdrawals still in force
    (at most one per use), the partners that existed when the last was made,
    and each partner's newest acknowledged version per use."""
    now = now or timezone.now()
    later = LedgerEntry.objects.filter(
        track=OuterRef("track"),
        use=OuterRef("use"),
        consent_version__gt=OuterRef("consent_version"),
        old_eligible=True,
        new_eligible=False,
    )
    still_withdrawn = TrackConsent.objects.filter(
        track=OuterRef("track"), use=OuterRef("use"), eligible=False
    )
    withdrawals = list(
        LedgerEntry.objects.filter(track=track, old_eligible=True, new_eligible=False)
        .filter(Exists(still_withdrawn))
        .exclude(Exists(later))
        .order_by("created_at", "consent_version")
    )
    if not withdrawals:
        return []
    partners = Partner.objects.filter(
        created_at__lte=max(entry.created_at for entry in withdrawals)
    ).order_by("name", "pk")
    # Ascending: each (partner, use) keeps its newest acknowledged version.
    acknowledged = {
        (partner_id, use): version
        for partner_id, use, version in Acknowledgement.objects.filter(
            track=track, use__in={entry.use for entry in withdrawals}
        )
        .order_by("consent_version")
        .values_list("partner_id", "use", "consent_version")
    }
    owed = []
    for partner in partners:
        for entry in withdrawals:
            if entry.created_at < partner.created_at:
                continue
            if acknowledged.get((partner.pk, entry.use), 0) >= entry.consent_version:
                continue
            due = entry.created_at + timedelta(days=partner.ack_days)
            owed.append((partner, entry, due, due < now))
    return owed
