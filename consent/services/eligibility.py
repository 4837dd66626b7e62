"""Re-evaluation: stored eligibility brought in line with the rules when
something other than a decision changes (a new track, a licence class, a
default, the policy), each change logged in the ledger."""

from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from accounts.models import User
from catalog import services as catalog_services
from catalog.models import Track
from consent.models import ArtistDefault, Decision, Source, TrackConsent
from consent.policy import is_eligible, policy_current
from consent.propagation.outbox import propagation_record
from consent.services.writes import (
    Change,
    defaults_for,
    id_condition,
    lock_tracks,
    write_changes,
)
from consent.uses import USE_ORDER


@dataclass
class RefreshOutcome:
    tracks: int = 0
    changed_rows: int = 0
    artists: set[int] = field(default_factory=set)
    # Tracks whose version moved (each recorded for propagation already).
    changed_tracks: set[int] = field(default_factory=set)


def eligibility_refresh(
    *,
    track_ids: list[int],
    source: str,
    actor: User | None,
    note: str,
    request_id: str = "",
) -> RefreshOutcome:
    """Recompute stored eligibility of these tracks and log every change.

    One transaction for the given ids (callers pass batches). Decisions are
    untouched; a row whose eligibility changes gets a ledger entry with the
    given source and note. The current policy is read after the tracks are
    locked (a policy run that got to one of them first is never undone with
    older rules). Stale copies of the track's artist and licence class on
    its rows are put right (no ledger row: they are not consent).
    """
    outcome = RefreshOutcome()
    with transaction.atomic():
        tracks = lock_tracks(track_ids)
        if not tracks:
            return outcome
        policy = policy_current()
        condition, params = id_condition("track_id", list(tracks))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT track_id, use, decision, eligible, license_class, artist_id "  # noqa: S608 - model table, id condition; ids are parameters
                f"FROM {TrackConsent._meta.db_table} WHERE {condition} "
                "ORDER BY track_id, use",
                params,
            )
            rows = cursor.fetchall()
        defaults = defaults_for({t.artist_id for t in tracks.values()})
        changes = []
        stale_copies = set()
        for track_id, use, decision, eligible, copied_class, copied_artist in rows:
            track = tracks[track_id]
            if (copied_class, copied_artist) != (track.license_class, track.artist_id):
                stale_copies.add(track_id)
            rule = policy.rule(track.license_class, use)
            new_eligible = is_eligible(
                rule, decision, defaults.get((track.artist_id, use))
            )
            if new_eligible != eligible:
                changes.append(
                    Change(
                        track_id=track_id,
                        public_id=track.public_id,
                        use=use,
                        old_decision=decision,
                        new_decision=decision,
                        old_eligible=eligible,
                        new_eligible=new_eligible,
                        note=note,
                    )
                )
                outcome.artists.add(track.artist_id)
        for track_id in sorted(stale_copies):
            # updated_at moves too: the artists' cached lists are keyed by it.
            TrackConsent.objects.filter(track_id=track_id).update(
                license_class=tracks[track_id].license_class,
                artist_id=tracks[track_id].artist_id,
                updated_at=timezone.now(),
            )
        write_changes(
            changes=changes,
            tracks=tracks,
            actor_id=actor.pk if actor else None,
            source=source,
            request_id=request_id,
            policy_version=policy.number,
            now=timezone.now(),
        )
    outcome.tracks = len(tracks)
    outcome.changed_rows = len(changes)
    outcome.changed_tracks = {change.track_id for change in changes}
    return outcome


def trackconsent_create_missing(
    *, track_ids: list[int] | None = None, source: str = Source.UPLOAD
) -> int:
    """Give every track (or these) its one row per use, set-based.

    New rows start on the artist's default; those that start eligible (an
    explicit default of ``granted`` or an opt-out rule) are then logged by
    ``eligibility_refresh``, in the same transaction as the insert: no row is
    ever committed with an eligibility the rules do not give it. Returns the
    number of rows created.
    """
    table = TrackConsent._meta.db_table
    track_table = Track._meta.db_table
    now = timezone.now()
    uses = ", ".join(["(%s)"] * len(USE_ORDER))
    where = ""
    params: list = [*USE_ORDER, now]
    if track_ids is not None:
        if not track_ids:
            return 0
        where = f"AND t.id IN ({', '.join(['%s'] * len(track_ids))})"
        params += list(track_ids)
    with transaction.atomic():
        new_tracks = _tracks_missing_rows(track_ids)
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH u(use) AS (VALUES {uses}) "  # noqa: S608 - model tables, placeholders; values are parameters
                f"INSERT INTO {table} "
                "(track_id, use, decision, eligible, artist_id, license_class, "
                "updated_at) "
                f"SELECT t.id, u.use, '', FALSE, t.artist_id, t.license_class, %s "
                f"FROM {track_table} t CROSS JOIN u "
                f"WHERE NOT EXISTS (SELECT 1 FROM {table} x "
                f"WHERE x.track_id = t.id AND x.use = u.use) {where}",
                params,
            )
            created = cursor.rowcount
            if created < 0:  # SQLite reports -1 for WITH … INSERT; ask it instead
                cursor.execute("SELECT changes()")
                created = cursor.fetchone()[0]
        # Rows that the rules make eligible from the start (opt-out, or a
        # default of yes) are corrected and logged, so the ledger explains them.
        candidates = tracks_that_may_start_eligible(track_ids)
        refreshed: set[int] = set()
        for start in range(0, len(candidates), 2000):
            refreshed |= eligibility_refresh(
                track_ids=candidates[start : start + 2000],
                source=source,
                actor=None,
                note="new track: the rules make it eligible",
            ).changed_tracks
        # Consumers hear of new tracks too (an opt-out rule makes them usable
        # from the start), one outbox row each: the refresh recorded the
        # version it wrote, the others are recorded at their version 0.
        propagation_record(
            versions={
                pk: version for pk, version in new_tracks.items() if pk not in refreshed
            },
            now=now,
        )
    return created


def _tracks_missing_rows(track_ids: list[int] | None) -> dict[int, int]:
    """Tracks (of these) without all their consent rows: id -> version."""
    tracks = Track.objects.all()
    if track_ids is not None:
        tracks = tracks.filter(pk__in=track_ids)
    complete = (
        TrackConsent.objects.values("track_id")
        .annotate(n=Count("id"))
        .filter(n=len(USE_ORDER))
        .values("track_id")
    )
    if track_ids is not None:
        complete = complete.filter(track_id__in=track_ids)
    return dict(tracks.exclude(pk__in=complete).values_list("pk", "consent_version"))


def tracks_that_may_start_eligible(track_ids: list[int] | None) -> list[int]:
    policy = policy_current()
    # Rows without a decision that the rules may make eligible: those of a
    # class where silence is a yes, or of an artist whose default is a yes.
    open_classes = {
        license_class
        for (license_class, _), rule in policy.rules.items()
        if is_eligible(rule, "", None)
    }
    yes_defaults = [
        default
        for default in Decision.values
        if any(is_eligible(rule, "", default) for rule in policy.rules.values())
    ]
    granting_artists = ArtistDefault.objects.filter(decision__in=yes_defaults).values(
        "artist_id"
    )
    rows = TrackConsent.objects.filter(eligible=False, decision="")
    if track_ids is not None:
        rows = rows.filter(track_id__in=track_ids)
    rows = rows.filter(
        Q(license_class__in=open_classes) | Q(artist_id__in=granting_artists)
    )
    return sorted(set(rows.values_list("track_id", flat=True)))


# --- Track creation and licence class (the consent side of catalog writes) -----


def tracks_upload(*, artist: User, uploads: list) -> list[Track]:
    """Store uploaded audio as tracks that start on the artist's defaults.

    One transaction around the catalogue write and the consent rows; on any
    failure nothing is left, neither rows nor stored files (the catalogue
    service removes its files when its own write fails, this one when the
    consent rows fail after it).
    """
    tracks: list[Track] = []
    try:
        with transaction.atomic():
            tracks = catalog_services.tracks_upload(artist=artist, uploads=uploads)
            trackconsent_create_missing(
                track_ids=[track.pk for track in tracks], source=Source.UPLOAD
            )
    except BaseException:
        for track in tracks:
            if track.audio_file:
                track.audio_file.storage.delete(track.audio_file.name)
        raise
    return tracks


def catalog_import(*, rows, **options):
    """The catalogue import, with every new track given its consent rows and
    every track whose licence class or artist changed re-evaluated (and its
    copies of both put right), inside each batch's transaction. A track that
    moves to another artist keeps its decisions: they are the track's; its
    unanswered uses follow the new artist's defaults."""

    def after_batch_write(*, created_isrcs, reclassified_track_ids):
        if created_isrcs:
            created = list(
                Track.objects.filter(isrc__in=created_isrcs).values_list(
                    "pk", flat=True
                )
            )
            trackconsent_create_missing(track_ids=created, source=Source.IMPORT)
        if reclassified_track_ids:
            eligibility_refresh(
                track_ids=reclassified_track_ids,
                source=Source.IMPORT,
                actor=None,
                note="licence class or artist changed by the catalogue import",
            )

    return catalog_services.catalog_import(
        rows=rows, after_batch_write=after_batch_write, **options
    )
