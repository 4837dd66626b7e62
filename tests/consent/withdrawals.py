"""Withdrawals made in the past, for the tests of what partners owe: a use
allowed, then no longer (a yes, then a no), as if at a given time."""

from contextlib import contextmanager
from datetime import datetime
from unittest import mock

from django.utils import timezone

from consent.services import consent_set
from tests.consent.helpers import GENAI


@contextmanager
def happening_at(moment: datetime):
    """Consent changes made as if at ``moment`` (the services take the time
    from ``timezone.now()``): how a withdrawal gets old without waiting."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def change(track, use: str, state: str) -> None:
    consent_set(track=track, use=use, state=state, actor=None, source="web")
    track.refresh_from_db()


def withdraw(track, use: str = GENAI, *, at: datetime | None = None) -> None:
    """A yes, then a no, at ``at`` (now by default): one withdrawal."""
    with happening_at(at or timezone.now()):
        change(track, use, "granted")
        change(track, use, "denied")
