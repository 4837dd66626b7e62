"""The receipt sender (``receipts_send_pending``): one at a time, so a burst
of doorbells never takes every worker from the deliveries, and handing on
when its time is up."""

import pytest
from django.core import mail

from consent.models import Receipt
from consent.services import consent_set, receipts_send_pending
from consent.services.receipt_outbox import RECEIPTS_LOCK
from tests.consent.helpers import TRAINING, advisory_lock_held_elsewhere
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _pending_receipts(make_track, count: int) -> None:
    """One receipt each for ``count`` artists: one e-mail each (one artist's
    receipts would all go in one e-mail)."""
    for _ in range(count):
        artist = UserFactory()
        track = make_track(artist=artist)
        consent_set(track=track, use=TRAINING, state="granted", actor=artist,
                    source="web")  # fmt: skip


@pytest.mark.postgres
def test_a_sender_woken_while_another_sends_returns_at_once(task_queue, make_track):
    # given two receipts not e-mailed yet, and another sender holding the
    # sender's lock on its own connection
    _pending_receipts(make_track, 2)
    with advisory_lock_held_elsewhere(RECEIPTS_LOCK):
        # when a doorbell wakes a sender here
        sent = receipts_send_pending()

        # then it sent nothing (the holder does it)
        assert sent == 0
        assert mail.outbox == []

    # and once the holder is gone, the next one sends both, once each
    assert receipts_send_pending() == 2
    assert len(mail.outbox) == 2
    assert not Receipt.objects.filter(emailed_at__isnull=True).exists()


def test_a_sender_whose_time_is_up_hands_on(task_queue, make_track, settings):
    # given three receipts not e-mailed yet and no time to send
    _pending_receipts(make_track, 3)
    task_queue.sent.clear()
    settings.REFRAIN_RECEIPT_RUN_SECONDS = 0

    # when the sender runs
    sent = receipts_send_pending()

    # then it sent one and rang itself again, for after what queued meanwhile
    assert sent == 1
    assert task_queue.of("send_pending_receipts") == [()]

    # and with time, the next one sends the other two
    settings.REFRAIN_RECEIPT_RUN_SECONDS = 5
    assert receipts_send_pending() == 2
    assert len(mail.outbox) == 3
