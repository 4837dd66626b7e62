"""The artist's defaults: the answer for tracks not decided yet."""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from catalog.models import Track
from consent.models import ArtistDefault, Decision, Receipt, Source, TrackConsent
from consent.policy import answer_is_yes, policy_current
from consent.receipts import defaults_receipt_extra
from consent.services.bulk import consent_bulk_set_chunk
from consent.services.eligibility import eligibility_refresh
from consent.services.receipt_outbox import receipt_for_request
from consent.services.writes import ConsentError, defaults_for, new_request_id
from consent.uses import USE_ORDER

# Tracks per statement (the whole change is still one transaction).
CHUNK = 2000
# The receipt's method: its ledger rows are ``web`` (the settings page), the
# receipt says what the artist did there.
DEFAULTS_METHOD = "defaults"


@dataclass
class DefaultsOutcome:
    changed_uses: list[str] = field(default_factory=list)
    tracks_following: int = 0
    tracks_kept: int = 0
    receipt: Receipt | None = None


def defaults_set(
    *,
    artist: User,
    defaults: dict[str, str],
    apply_to_existing: bool,
    actor: User | None,
    request_id: str = "",
) -> DefaultsOutcome:
    """Change the artist's default answer per use.

    Tracks with no decision follow the default. With ``apply_to_existing`` the
    tracks still on default follow the new one (their eligibility is
    re-evaluated and logged); without it, they are first pinned to the answer
    they had, as the rule read it (``answer_is_yes`` of no decision and the
    previous default: under opt-out silence is a yes, so such a track is
    pinned to ``granted`` and stays eligible), so only tracks uploaded later
    take the new default.

    One transaction for all of it (the defaults, every ledger row, the
    receipt): a failure leaves nothing, and the retry starts afresh. Locks
    every track of the artist first, so concurrent switches wait for it.
    """
    _check_defaults(defaults)
    outcome = DefaultsOutcome()
    request_id = request_id or new_request_id()
    # One transaction: the defaults, the pinned or re-evaluated tracks and the
    # receipt commit together or not at all (a retry after a crash then
    # starts from the defaults it read, never from half of a change). The
    # services called below become savepoints.
    with transaction.atomic():
        # Every track of the artist is locked (in primary-key order, as every
        # writer locks) before anything is read: a switch of one of them waits
        # for this change and then reads the new defaults, so no track is
        # left evaluated against the old default, and two changes of defaults
        # queue here.
        _lock_tracks_of(artist)
        previous = {
            use: decision for (_, use), decision in defaults_for([artist.pk]).items()
        }
        changed = [
            use
            for use in USE_ORDER
            if use in defaults and (defaults[use] or None) != previous.get(use)
        ]
        outcome.changed_uses = changed
        if not changed:
            return outcome
        on_default = list(
            TrackConsent.objects.filter(
                artist=artist, use__in=changed, decision=""
            ).values_list("track_id", "use", "license_class")
        )
        step = {"artist": artist, "actor": actor, "request_id": request_id}
        if not apply_to_existing:
            outcome.tracks_kept = _pin(on_default, previous=previous, **step)
        _store_defaults(artist=artist, defaults=defaults, uses=changed)
        if apply_to_existing:
            track_ids = sorted({track_id for track_id, _, _ in on_default})
            outcome.tracks_following = _follow(track_ids, **step)
        if outcome.tracks_kept or outcome.tracks_following:
            # One receipt for every track this change of defaults touched,
            # saying which defaults changed (its e-mail says so in words).
            outcome.receipt = receipt_for_request(
                artist=artist,
                request_id=request_id,
                method=DEFAULTS_METHOD,
                extra=defaults_receipt_extra(
                    previous=previous,
                    defaults=defaults,
                    uses=changed,
                    applied_to_existing=apply_to_existing,
                ),
            )
    return outcome


def _check_defaults(defaults: dict[str, str]) -> None:
    for use, decision in defaults.items():
        if use not in USE_ORDER:
            raise ConsentError(f"“{use}” is not a use.")
        if decision not in ("", *Decision.values):
            raise ConsentError(f"“{decision}” is not granted, denied or not set.")


def _pin(
    on_default: list[tuple[int, str, str]],
    *,
    previous: dict[str, str],
    artist: User,
    actor: User | None,
    request_id: str,
) -> int:
    """Give each track on default the answer the rule read from it (before the
    default changes): returns how many were pinned."""
    policy = policy_current()
    pins: dict[tuple[str, str], list[int]] = defaultdict(list)
    for track_id, use, license_class in on_default:
        says_yes = answer_is_yes(policy.rule(license_class, use), "", previous.get(use))
        pins[(use, Decision.GRANTED if says_yes else Decision.DENIED)].append(track_id)
    kept = 0
    for (use, keep), track_ids in sorted(pins.items()):
        ids = sorted(track_ids)
        for start in range(0, len(ids), CHUNK):
            kept += consent_bulk_set_chunk(
                artist=artist,
                track_ids=ids[start : start + CHUNK],
                use=use,
                state=keep,
                actor=actor,
                source=Source.WEB,
                request_id=request_id,
            ).changed
    return kept


def _store_defaults(*, artist: User, defaults: dict[str, str], uses: list[str]) -> None:
    now = timezone.now()
    for use in uses:
        if defaults[use]:
            ArtistDefault.objects.update_or_create(
                artist=artist,
                use=use,
                defaults={"decision": defaults[use], "updated_at": now},
            )
        else:
            ArtistDefault.objects.filter(artist=artist, use=use).delete()


def _follow(
    track_ids: list[int], *, artist: User, actor: User | None, request_id: str
) -> int:
    """Re-evaluate the tracks on default under the new defaults: returns how
    many consent rows changed eligibility."""
    following = 0
    for start in range(0, len(track_ids), CHUNK):
        following += eligibility_refresh(
            track_ids=track_ids[start : start + CHUNK],
            source=Source.WEB,
            actor=actor,
            note="follows your new default",
            request_id=request_id,
        ).changed_rows
    return following


def _lock_tracks_of(artist: User) -> int:
    """Lock every track of the artist, in primary-key order (no-op on SQLite,
    whose write transactions already exclude each other)."""
    return len(
        Track.objects.select_for_update()
        .filter(artist=artist)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
