"""The artist's defaults: the answer for tracks not decided yet."""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from consent.models import ArtistDefault, Decision, Receipt, Source, TrackConsent
from consent.services.bulk import consent_bulk_set_chunk
from consent.services.eligibility import eligibility_refresh
from consent.services.receipt_outbox import receipt_for_request
from consent.services.writes import ConsentError, defaults_for, new_request_id
from consent.uses import USE_ORDER


@dataclass
class DefaultsOutcome:
    changed_uses: list[str] = field(default_factory=list)
    tracks_following: int = 0
    tracks_kept: int = 0
    receipt: Receipt | None = None


def defaults_set(  # noqa: C901 - 13 > 10: to split (check, pin, apply), see the commit
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
    they had (an explicit decision equal to the previous default, ``denied``
    when there was none), so only tracks uploaded later take the new default.
    """
    outcome = DefaultsOutcome()
    request_id = request_id or new_request_id()
    previous = {
        use: decision for (_, use), decision in defaults_for([artist.pk]).items()
    }
    for use, decision in defaults.items():
        if use not in USE_ORDER:
            raise ConsentError(f"“{use}” is not a use.")
        if decision not in ("", *Decision.values):
            raise ConsentError(f"“{decision}” is not granted, denied or not set.")
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
        ).values_list("track_id", "use")
    )
    if not apply_to_existing:
        for use in changed:
            keep = previous.get(use) or Decision.DENIED
            ids = [track_id for track_id, u in on_default if u == use]
            for start in range(0, len(ids), 2000):
                result = consent_bulk_set_chunk(
                    artist=artist,
                    track_ids=ids[start : start + 2000],
                    use=use,
                    state=keep,
                    actor=actor,
                    source=Source.WEB,
                    request_id=request_id,
                )
                outcome.tracks_kept += result.changed
    with transaction.atomic():
        now = timezone.now()
        for use in changed:
            if defaults[use]:
                ArtistDefault.objects.update_or_create(
                    artist=artist,
                    use=use,
                    defaults={"decision": defaults[use], "updated_at": now},
                )
            else:
                ArtistDefault.objects.filter(artist=artist, use=use).delete()
    if apply_to_existing:
        ids = sorted({track_id for track_id, _ in on_default})
        for start in range(0, len(ids), 2000):
            result = eligibility_refresh(
                track_ids=ids[start : start + 2000],
                source=Source.WEB,
                actor=actor,
                note="follows your new default",
                request_id=request_id,
            )
            outcome.tracks_following += result.changed_rows
    if outcome.tracks_kept or outcome.tracks_following:
        # One receipt for every track this change of defaults touched.
        outcome.receipt = receipt_for_request(
            artist=artist, request_id=request_id, method=Source.WEB
        )
    return outcome
