"""What a consumer is told: the current state of tracks for its uses.

One statement reads every track's consent version and eligibility, so a
payload never mixes two states of a track. The body is canonical JSON and the
message id is derived from it: a retry of the same content carries the same
``webhook-id``, and different content never does.
"""

import hashlib
import json
from dataclasses import dataclass

from django.db import connection

from catalog.models import Track
from consent.db import id_condition
from consent.models import TrackConsent

EVENT_STATE = "consent.state"
EVENT_TEST = "refrain.test"


@dataclass(frozen=True)
class TrackState:
    track_id: int
    public_id: str
    isrc: str | None
    consent_version: int
    eligible: dict[str, bool]

    def as_json(self) -> dict:
        return {
            "track": self.public_id,
            "isrc": self.isrc,
            "consent_version": self.consent_version,
            "eligible": self.eligible,
        }


def track_states(*, track_ids: list[int], uses: list[str]) -> list[TrackState]:
    """The tracks' current state for ``uses`` (tracks since deleted are left
    out), in track id order."""
    if not track_ids or not uses:
        return []
    condition, params = id_condition("t.id", sorted(set(track_ids)))
    use_marks = ", ".join(["%s"] * len(uses))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id, t.public_id, t.isrc, t.consent_version, tc.use, tc.eligible "  # noqa: S608 - model tables, placeholders; values are parameters
            f"FROM {Track._meta.db_table} t JOIN {TrackConsent._meta.db_table} tc "
            f"ON tc.track_id = t.id WHERE {condition} AND tc.use IN ({use_marks}) "
            "ORDER BY t.id",
            [*params, *uses],
        )
        rows = cursor.fetchall()
    states: dict[int, TrackState] = {}
    for track_id, public_id, isrc, version, use, eligible in rows:
        state = states.get(track_id)
        if state is None:
            state = states[track_id] = TrackState(
                track_id, public_id, isrc, version, {}
            )
        state.eligible[use] = bool(eligible)
    order = {use: index for index, use in enumerate(uses)}
    return [
        TrackState(
            s.track_id,
            s.public_id,
            s.isrc,
            s.consent_version,
            dict(sorted(s.eligible.items(), key=lambda item: order[item[0]])),
        )
        for s in states.values()
    ]


def canonical(payload: dict) -> str:
    return json.dumps(
        payload, separators=(",", ":"), sort_keys=True, ensure_ascii=False
    )


def state_body(states: list[TrackState]) -> str:
    return canonical(
        {"type": EVENT_STATE, "data": {"tracks": [s.as_json() for s in states]}}
    )


def message_id(*, consumer_id: int, body: str) -> str:
    digest = hashlib.sha256(f"{consumer_id}.{body}".encode()).hexdigest()
    return f"msg_{digest[:32]}"
