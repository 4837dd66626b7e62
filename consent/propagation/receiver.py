"""A webhook receiver as a partner would write one: verify the Standard
Webhooks signature with the reference library, then apply each track's state
only forward.

``receiver_apply`` is pure (a dict in, a status and words out) so the demo's
own receiver (``/demo/webhook/``) and the test suite's local HTTP receivers
share one definition of "received correctly". ``receiver_file_store`` keeps a
store in a JSON file, locked, for the demo.
"""

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from consent.propagation.payloads import EVENT_STATE, EVENT_TEST

STATE_FILE = "state.json"


class Malformed(ValueError):
    """A signed body that is not what Refrain sends."""


def _verified(body: str, headers: Mapping[str, str], secret: str):
    try:
        return Webhook(secret).verify(body, dict(headers))
    except json.JSONDecodeError:  # signed, but not JSON: the caller's 400
        raise
    except WebhookVerificationError as error:
        raise PermissionError(str(error)) from None
    except ValueError as error:  # a signature that is not "v1,<base64>"
        raise PermissionError(f"Malformed signature header ({error})") from None


def _tracks(payload) -> list[tuple[str, int, dict[str, bool]]]:
    """The (public id, version, eligible) of a state event, all checked
    before any is applied."""
    try:
        tracks = payload["data"]["tracks"]
        checked = []
        for item in tracks:
            public_id, version = item["track"], item["consent_version"]
            eligible = item["eligible"]
            if not isinstance(public_id, str) or type(version) is not int:
                raise Malformed("track or consent_version of the wrong type")
            if not isinstance(eligible, dict) or not all(
                isinstance(key, str) and type(value) is bool
                for key, value in eligible.items()
            ):
                raise Malformed("eligible must map uses to true or false")
            checked.append((public_id, version, eligible))
    except (KeyError, TypeError) as error:
        raise Malformed(f"missing or misshapen field {error}") from None
    return checked


def receiver_apply(
    store: dict,
    body: str,
    headers: Mapping[str, str],
    secret: str,
    tally: dict | None = None,
) -> tuple[int, str]:
    """Verify ``body`` against ``headers`` with ``secret`` and apply it to
    ``store`` ({track public id: {"version", "eligible", "received_at",
    "message_id"}}), each track only if its version is newer than the one
    held. Returns the HTTP status to answer and what happened, in words.

    401: the signature, secret or timestamp does not verify (nothing
    applied). 400: signed but malformed (nothing applied). 200 otherwise; a
    duplicate or an older version changes nothing, so retries are harmless.
    A state that differs from the one held under the same version (which
    Refrain never sends) is held as it was and counted as a conflict. With
    ``tally``, the counts are added to it (``applied``, ``unchanged``,
    ``older``, and ``conflicts``: (track, version, held, received) each).
    """
    try:
        payload = _verified(body, headers, secret)
    except PermissionError as error:
        return 401, f"Signature rejected: {error}."
    except json.JSONDecodeError:
        return 400, "The body is not JSON."
    kind = payload.get("type") if isinstance(payload, dict) else None
    if kind == EVENT_TEST:
        return 200, "Test event received."
    if kind != EVENT_STATE:
        return 200, f"Event type {kind!r} ignored."
    try:
        tracks = _tracks(payload)
    except Malformed as error:
        return 400, f"Malformed consent.state event: {error}."
    message_id = {k.lower(): v for k, v in headers.items()}.get("webhook-id", "")
    counts = _apply_forward(store, tracks, message_id)
    if tally is not None:
        for key, count in counts.items():
            tally[key] = tally.get(key, [] if key == "conflicts" else 0) + count
    conflicts = counts["conflicts"]
    words = (
        f"Applied {counts['applied']}, already held {counts['unchanged']}, "
        f"older ignored {counts['older']}"
    )
    if conflicts:
        words += f", {len(conflicts)} in conflict with the state held"
    return 200, words + "."


def _apply_forward(store: dict, tracks, message_id: str) -> dict:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    counts: dict = {"applied": 0, "unchanged": 0, "older": 0, "conflicts": []}
    for public_id, version, eligible in tracks:
        held = store.get(public_id)
        if held is None or version > held["version"]:
            store[public_id] = {
                "version": version,
                "eligible": eligible,
                "received_at": now,
                "message_id": message_id,
            }
            counts["applied"] += 1
        elif version == held["version"]:
            counts["unchanged"] += 1
            if held["eligible"] != eligible:
                counts["conflicts"].append(
                    (public_id, version, held["eligible"], eligible)
                )
        else:
            counts["older"] += 1
    return counts


@contextmanager
def receiver_file_store(directory: Path, *, write: bool) -> Iterator[dict]:
    """The store kept in ``directory/state.json``: read under a lock (shared
    to read, exclusive to write, so two requests never lose each other's
    tracks) and, when ``write``, replaced atomically on leaving."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / STATE_FILE
    with open(directory / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        try:
            store = json.loads(path.read_text())
        except FileNotFoundError:
            store = {}
        yield store
        if write:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(store, sort_keys=True, indent=1))
            os.replace(temporary, path)
