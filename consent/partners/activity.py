"""What the AI partners did, for the pages people read: on an artist's track
page, who checked the track and what each partner acknowledged or still
owes; on the staff pages, each partner with its keys and overdue
acknowledgements. Reads only."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import (
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    Window,
)
from django.db.models.functions import RowNumber
from django.utils import timezone

from catalog.models import Track
from consent.models import (
    Acknowledgement,
    ApiKey,
    Consumer,
    LedgerEntry,
    Partner,
    PartnerLookupDay,
)
from consent.partners.acknowledgements import (
    withdrawals_overdue,
    withdrawals_owed_for_track,
)
from consent.uses import USES

LOOKUP_DAYS = 30  # the track page shows this many days of look-ups
DAYS_LISTED = 5  # more days with look-ups than this: a summary first
ACKNOWLEDGEMENTS_SHOWN = 5  # per partner, the newest


@dataclass(frozen=True)
class LookupDay:
    day: date
    checks: int


@dataclass(frozen=True)
class LastAnswer:
    """The last answer a partner was given about the track."""

    use_name: str
    allowed: bool
    at: datetime


@dataclass(frozen=True)
class AcknowledgementLine:
    status: str  # Acknowledgement.Status
    use_name: str
    dataset: str
    consent_version: int
    note: str
    at: datetime


@dataclass(frozen=True)
class OwedWithdrawal:
    """A withdrawal (a yes taken back) the partner has not acknowledged."""

    use_name: str
    withdrawn_at: datetime
    due: datetime
    overdue: bool


@dataclass
class PartnerActivity:
    """One partner's dealings with one track."""

    partner: str
    days: list[LookupDay] = field(default_factory=list)  # newest first
    last_answer: LastAnswer | None = None
    acknowledgements: list[AcknowledgementLine] = field(default_factory=list)
    earlier_acknowledgements: int = 0
    owed: list[OwedWithdrawal] = field(default_factory=list)

    @property
    def checks(self) -> int:
        """Look-ups in the last ``LOOKUP_DAYS`` days."""
        return sum(day.checks for day in self.days)

    @property
    def summarised(self) -> bool:
        return len(self.days) > DAYS_LISTED

    @property
    def overdue(self) -> bool:
        return any(withdrawal.overdue for withdrawal in self.owed)


def partner_activity_for_track(
    track: Track, now: datetime | None = None
) -> list[PartnerActivity]:
    """Per partner that checked, acknowledged or owes something about
    ``track``, by name: its look-ups of the last ``LOOKUP_DAYS`` days and the
    last answer it was given (however long ago), its newest
    acknowledgements, and the withdrawals it has yet to acknowledge.

    At most five queries whatever the number of partners, days or
    acknowledgements. Only for the track's owner: the caller has checked."""
    now = now or timezone.now()
    found: dict[int, PartnerActivity] = {}

    def of(partner: Partner) -> PartnerActivity:
        return found.setdefault(partner.pk, PartnerActivity(partner=partner.name))

    since = timezone.localdate(now) - timedelta(days=LOOKUP_DAYS - 1)
    for row in _lookup_days(track, since):
        activity = of(row.partner)
        if activity.last_answer is None:  # rows come newest first
            activity.last_answer = LastAnswer(
                use_name=USES[row.last_use].name,
                allowed=row.last_eligible,
                at=row.last_checked_at,
            )
        if row.day >= since:
            activity.days.append(LookupDay(day=row.day, checks=row.checks))

    for ack in _newest_acknowledgements(track):
        activity = of(ack.partner)
        activity.earlier_acknowledgements = max(
            ack.of_partner - ACKNOWLEDGEMENTS_SHOWN, 0
        )
        activity.acknowledgements.append(
            AcknowledgementLine(
                status=ack.status,
                use_name=USES[ack.use].name,
                dataset=ack.dataset,
                consent_version=ack.consent_version,
                note=ack.note,
                at=ack.created_at,
            )
        )

    for partner, entry, due, overdue in withdrawals_owed_for_track(track, now):
        of(partner).owed.append(
            OwedWithdrawal(
                use_name=USES[entry.use].name,
                withdrawn_at=entry.created_at,
                due=due,
                overdue=overdue,
            )
        )
    return sorted(found.values(), key=lambda activity: activity.partner.casefold())


def _lookup_days(track: Track, since: date) -> QuerySet[PartnerLookupDay]:
    """The track's look-up days since ``since``, and each partner's latest
    day however old (it holds the last answer), newest first."""
    latest = (
        PartnerLookupDay.objects.filter(track=track, partner=OuterRef("partner"))
        .order_by("-day")
        .values("day")[:1]
    )
    return (
        PartnerLookupDay.objects.filter(track=track)
        .filter(Q(day__gte=since) | Q(day=Subquery(latest)))
        .select_related("partner")
        .order_by("partner_id", "-day")
    )


def _newest_acknowledgements(track: Track) -> QuerySet[Acknowledgement]:
    """Each partner's newest ``ACKNOWLEDGEMENTS_SHOWN`` acknowledgements of
    the track, newest first, each with ``of_partner``: how many it made."""
    newest_first = [F("created_at").desc(), F("pk").desc()]
    return (
        Acknowledgement.objects.filter(track=track)
        .select_related("partner")
        .annotate(
            rank=Window(
                RowNumber(), partition_by=[F("partner")], order_by=newest_first
            ),
            of_partner=Window(Count("pk"), partition_by=[F("partner")]),
        )
        .filter(rank__lte=ACKNOWLEDGEMENTS_SHOWN)
        .order_by("partner_id", *newest_first)
    )


# --- The staff pages --------------------------------------------------------------


@dataclass(frozen=True)
class PartnerOverview:
    partner: Partner
    active_keys: int
    overdue: int


def partners_overview(now: datetime | None = None) -> list[PartnerOverview]:
    """Every partner by name, with its linked webhook, its active keys and
    how many acknowledgements it has let run past its deadline (one count
    per partner: each has its own deadline and start)."""
    partners = (
        Partner.objects.select_related("consumer")
        .annotate(active_keys=Count("keys", filter=Q(keys__revoked_at__isnull=True)))
        .order_by("name")
    )
    return [
        PartnerOverview(
            partner=partner,
            active_keys=partner.active_keys,
            overdue=withdrawals_overdue(partner, now).count(),
        )
        for partner in partners
    ]


def partner_keys(partner: Partner) -> QuerySet[ApiKey]:
    """The partner's keys, revoked ones too, newest first."""
    return ApiKey.objects.filter(partner=partner).order_by("-created_at", "-pk")


def catalog_keys() -> QuerySet[ApiKey]:
    """The catalogue feed's keys, revoked ones too, newest first."""
    return ApiKey.objects.filter(scope=ApiKey.Scope.CATALOG).order_by(
        "-created_at", "-pk"
    )


def overdue_for_partner(
    partner: Partner, now: datetime | None = None
) -> QuerySet[LedgerEntry]:
    """The withdrawals ``partner`` let run past its deadline, oldest first,
    with their tracks, artists and when each was due (``due``)."""
    return (
        withdrawals_overdue(partner, now)
        .select_related("track", "track__artist")
        .annotate(
            due=ExpressionWrapper(
                F("created_at") + Value(timedelta(days=partner.ack_days)),
                output_field=DateTimeField(),
            )
        )
    )


def webhooks_unlinked() -> QuerySet[Consumer]:
    """Partner webhooks no partner is linked to yet (a new partner may take
    one)."""
    return Consumer.objects.filter(
        kind=Consumer.Kind.WEBHOOK, partner__isnull=True
    ).order_by("name")
