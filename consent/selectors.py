"""Permission-scoped reads of consent: per-track states, filters, history."""

from dataclasses import dataclass

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import User
from catalog.models import LicenseClass, Track
from consent.audit.figures import percent
from consent.models import (
    ArtistDefault,
    BulkJob,
    CheckRun,
    LedgerAnchor,
    LedgerEntry,
    PolicyRule,
    PolicyVersion,
    Receipt,
    ReceiptEmailPreference,
    ReceiptEmails,
    State,
    TrackConsent,
)
from consent.partners.acknowledgements import overdue_track_condition
from consent.partners.feed import eligible_bits_sql, permitted
from consent.policy import PUBLIC_RULE_WORDS, Policy, policy_changes
from consent.uses import USE_ORDER, USES

ACK_OVERDUE = "overdue"


@dataclass(frozen=True)
class ConsentFilters:
    """``use`` with ``state`` (granted/denied/default) and/or ``eligible``
    (yes/no); ``eligible`` without a use means "for any use". ``ack``
    (``overdue``): only tracks some AI partner has not acknowledged a
    withdrawal of within its deadline."""

    use: str = ""
    state: str = ""
    eligible: str = ""
    ack: str = ""

    @property
    def is_filtered(self) -> bool:
        return bool(self.state or self.eligible or self.ack)

    def as_q(self) -> Q | None:
        q = self._consent_q()
        if self.ack == ACK_OVERDUE:
            overdue = overdue_track_condition()
            q = overdue if q is None else q & overdue
        return q

    def _consent_q(self) -> Q | None:
        if self.use:
            q = Q(consents__use=self.use)
            if self.state:
                decision = "" if self.state == State.DEFAULT else self.state
                q &= Q(consents__decision=decision)
            if self.eligible:
                q &= Q(consents__eligible=self.eligible == "yes")
            return q if self.state or self.eligible else None
        if self.eligible:
            any_eligible = Exists(
                TrackConsent.objects.filter(track=OuterRef("pk"), eligible=True)
            )
            return Q(any_eligible) if self.eligible == "yes" else ~Q(any_eligible)
        return None


def consents_for_tracks(*, track_ids: list[int]) -> dict[int, dict[str, tuple]]:
    """``{track_id: {use: (decision, eligible)}}`` in one query."""
    states: dict[int, dict[str, tuple]] = {}
    for track_id, use, decision, eligible in TrackConsent.objects.filter(
        track_id__in=track_ids
    ).values_list("track_id", "use", "decision", "eligible"):
        states.setdefault(track_id, {})[use] = (decision, eligible)
    return states


def permitted_for_track(*, track: Track) -> dict[str, bool]:
    """The track's stored eligibility per use: what every consumer is told,
    and what its public signals say (a use without a row: not permitted)."""
    found = dict(
        TrackConsent.objects.filter(track=track).values_list("use", "eligible")
    )
    return {use: bool(found.get(use)) for use in USE_ORDER}


def permitted_tracks(*, after_id: int, limit: int) -> list[tuple[int, str, dict]]:
    """``(track id, public id, permitted)`` of up to ``limit`` tracks with an
    id above ``after_id`` that are eligible for at least one use, by id.

    Public (the public signals list them). Reads only the index of eligible
    rows (``consent_tc_eligible_track``): the cost follows the tracks that
    permit something, not the catalogue, and a caller pages with
    ``after_id`` (keyset) in flat memory.
    """
    consents = TrackConsent._meta.db_table
    tracks = Track._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT g.track_id, t.public_id, g.bits FROM ("  # noqa: S608 - model tables, fixed fragments
            f"SELECT c.track_id, {eligible_bits_sql('c.use', 'c.eligible')} AS bits "
            f"FROM {consents} c WHERE c.eligible AND c.track_id > %s "
            "GROUP BY c.track_id ORDER BY c.track_id LIMIT %s"
            f") g JOIN {tracks} t ON t.id = g.track_id ORDER BY g.track_id",
            [after_id, limit],
        )
        return [(pk, public_id, permitted(bits)) for pk, public_id, bits in cursor]


def check_runs_latest() -> list[tuple[str, CheckRun | None]]:
    """Each consistency check's label and its newest run (None: never run),
    in ``CheckRun.Kind`` order; one index probe each (``consent_checkrun_kind``)."""
    return [
        (label, CheckRun.objects.filter(kind=kind).order_by("-started_at").first())
        for kind, label in CheckRun.Kind.choices
    ]


def defaults_for_artist(*, artist: User) -> dict[str, str | None]:
    """The artist's explicit default per use (``None`` where never set)."""
    found = dict(
        ArtistDefault.objects.filter(artist=artist).values_list("use", "decision")
    )
    return {use: found.get(use) for use in USE_ORDER}


def receipt_emails_for_artist(*, artist: User) -> str:
    """How the artist's receipts are e-mailed (``each`` until they choose)."""
    return (
        ReceiptEmailPreference.objects.filter(artist=artist)
        .values_list("frequency", flat=True)
        .first()
        or ReceiptEmails.EACH
    )


def ledger_for_track(*, track: Track) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(track=track).order_by("-consent_version")


def receipts_for_track(*, track: Track) -> QuerySet[Receipt]:
    return Receipt.objects.filter(tracks=track).order_by("-created_at")


def receipt_for_owner(*, owner: User, public_id) -> Receipt:
    return get_object_or_404(Receipt, artist=owner, public_id=public_id)


def bulk_job_for_owner(*, owner: User, public_id) -> BulkJob:
    return get_object_or_404(BulkJob, artist=owner, public_id=public_id)


def tracks_on_default_count(*, artist: User, use: str) -> int:
    return TrackConsent.objects.filter(artist=artist, use=use, decision="").count()


def list_state(*, owner: User):
    """The policy, the artist's defaults and the list's version, in one query
    (the track list needs all three on every request, cached or not).

    The version is the last change of any of the artist's tracks, the last
    change of any of their consent rows and their track count: every write
    that changes a row of the list moves one of these, so a page cached under
    this version is never served after such a write commits.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'rule', r.license_class, r.use, r.rule, v.number "
            "FROM consent_policyrule r "
            "JOIN consent_policyversion v ON v.id = r.version_id "
            "WHERE v.number = (SELECT MAX(number) FROM consent_policyversion) "
            "UNION ALL SELECT 'default', NULL, d.use, d.decision, NULL "
            "FROM consent_artistdefault d WHERE d.artist_id = %s "
            "UNION ALL SELECT 'version', "
            "CAST((SELECT MAX(updated_at) FROM catalog_track "
            "WHERE artist_id = %s) AS TEXT), "
            "CAST((SELECT MAX(updated_at) FROM consent_trackconsent "
            "WHERE artist_id = %s) AS TEXT), "
            "CAST((SELECT SUM(track_count) FROM catalog_artistcatalogstats "
            "WHERE artist_id = %s) AS TEXT), NULL",
            [owner.pk] * 4,
        )
        rows = cursor.fetchall()
    rules, defaults, number, version = {}, dict.fromkeys(USE_ORDER), None, ()
    for kind, a, b, c, d in rows:
        if kind == "rule":
            rules[(a, b)] = c
            number = d
        elif kind == "default":
            defaults[b] = c
        else:
            version = (a, b, c)
    if number is None:
        raise RuntimeError("no policy version: run migrations")
    return Policy(number=number, rules=rules), defaults, version


def anchors_published(*, before: int | None = None) -> QuerySet[LedgerAnchor]:
    """Every ledger anchor, newest first (those before ``before``, if given):
    public, like the anchors themselves."""
    anchors = LedgerAnchor.objects.order_by("-pk")
    if before is not None:
        anchors = anchors.filter(pk__lt=before)
    return anchors


def policy_history() -> list[tuple[PolicyVersion, dict[tuple[str, str], str]]]:
    """Every policy version, newest first, with its rules (two queries)."""
    versions = list(PolicyVersion.objects.order_by("-number"))
    rules: dict[int, dict[tuple[str, str], str]] = {}
    for version_id, license_class, use, rule in PolicyRule.objects.values_list(
        "version_id", "license_class", "use", "rule"
    ):
        rules.setdefault(version_id, {})[(license_class, use)] = rule
    return [(version, rules.get(version.pk, {})) for version in versions]


def policy_versions_described() -> list[dict]:
    """Every policy version, newest first, each with its rules and what it
    changed from the one before, in the public's words (``changes``; the
    first version has ``first`` set)."""
    history = policy_history()
    versions = []
    for index, (version, rules) in enumerate(history):
        earlier = history[index + 1][1] if index + 1 < len(history) else None
        changes = [
            f"{USES[change.use].name}, "
            f"{LicenseClass(change.license_class).label.lower()} "
            f"music: {PUBLIC_RULE_WORDS[change.old]} before, "
            f"{PUBLIC_RULE_WORDS[change.new]} from then on"
            for change in (policy_changes(earlier, rules) if earlier else [])
        ]
        versions.append(
            {
                "version": version,
                "rules": rules,
                "changes": changes,
                "first": earlier is None,
            }
        )
    return versions


def policy_run_progress() -> dict | None:
    """The newest policy version still being applied to the catalogue, with
    how far it has got (tracks by id), or ``None`` when every version is."""
    version = (
        PolicyVersion.objects.filter(applied_at__isnull=True)
        .order_by("-number")
        .first()
    )
    if version is None:
        return None
    last = Track.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    done = min(version.applied_through_track_id, last)
    return {
        "version": version,
        "done": done,
        "total": last,
        "percent": percent(done, last) if last else 100,
    }


def policy_table(rules: dict[tuple[str, str], str]) -> list[dict]:
    """Per use, its name, description and the rule of each licence class in
    the public's words (``LicenseClass`` order)."""
    return [
        {
            "use": USES[use].name,
            "description": USES[use].description,
            "rules": [
                PUBLIC_RULE_WORDS[rules[(value, use)]]
                for value, _ in LicenseClass.choices
            ],
        }
        for use in USE_ORDER
    ]
