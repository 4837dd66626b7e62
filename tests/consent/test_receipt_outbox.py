"""The receipt outbox's e-mails (``consent.services.receipt_outbox``): one
e-mail per burst of an artist's changes, a daily one, or none, as the artist
chose; every receipt once at most, and kept whatever the choice."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail import EmailMessage
from django.utils import timezone

from consent.models import Receipt, ReceiptEmailPreference, ReceiptEmails
from consent.services import (
    consent_set,
    receipt_email_send,
    receipt_outbox,
    receipts_burst_send,
    receipts_send_pending,
)
from consent.services.receipt_outbox import burst_cutoffs, burst_is_due
from tests.consent.helpers import GENAI, MINING, TRAINING
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _bursts(settings):
    """Production's windows: a burst ends after 3 quiet minutes, or when
    its oldest receipt has waited 15."""
    settings.REFRAIN_RECEIPT_BURST_MINUTES = 3
    settings.REFRAIN_RECEIPT_BURST_MAX_MINUTES = 15


def _switch(track, use=GENAI, state="granted"):
    return consent_set(
        track=track, use=use, state=state, actor=track.artist, source="web"
    ).receipt


def _age(receipts, **ago) -> None:
    """Make receipts as old as ``ago`` (they were written just now)."""
    Receipt.objects.filter(pk__in=[r.pk for r in receipts]).update(
        created_at=timezone.now() - timedelta(**ago)
    )


def _choose(artist, frequency: str) -> None:
    ReceiptEmailPreference.objects.create(artist=artist, frequency=frequency)


def _links(message) -> list[str]:
    return [
        line.split("/receipts/")[1].removesuffix(".json")
        for line in message.body.splitlines()
        if line.startswith("  Receipt: ")
    ]


def test_a_burst_of_changes_is_one_e_mail_once_no_change_came_for_a_while(
    make_track, task_queue
):
    # given three changes of one artist's two tracks, a minute apart
    artist = UserFactory()
    first, second = make_track(artist=artist), make_track(artist=artist)
    receipts = [
        _switch(first),
        _switch(second, use=MINING),
        _switch(first, state="denied"),
    ]
    _age(receipts[:1], minutes=2)
    _age(receipts[1:2], minutes=1)

    # when beat sweeps while the last change is a moment old
    sent = receipts_send_pending()

    # then nothing is sent yet (the artist may still be changing things), and
    # no doorbell was rung for any change (only beat sends bursts)
    assert sent == 0
    assert mail.outbox == []
    assert task_queue.sent == []
    assert Receipt.objects.filter(emailed_at__isnull=True).count() == 3

    # when no change has come for three minutes
    _age(receipts[2:], minutes=3)
    _age(receipts[:1], minutes=5)
    _age(receipts[1:2], minutes=4)
    sent = receipts_send_pending()

    # then one e-mail lists all three changes, oldest first, each linked and
    # attached
    assert sent == 1
    [message] = mail.outbox
    assert message.to == [artist.email]
    assert message.subject == "[Refrain] Your consent receipts (3)"
    assert _links(message) == [str(r.public_id) for r in receipts]
    assert [name for name, _, _ in message.attachments] == [
        f"refrain-receipt-{r.public_id}.json" for r in receipts
    ]
    assert "Refrain recorded 3 changes to your consent:" in message.body
    assert not Receipt.objects.filter(emailed_at__isnull=True).exists()
    assert not Receipt.objects.filter(email_skipped=True).exists()

    # and a second sweep (or a duplicate one) sends nothing more
    assert receipts_send_pending() == 0
    assert receipts_burst_send(artist_id=artist.pk) == 0
    assert len(mail.outbox) == 1


def test_a_burst_that_goes_on_is_sent_when_its_oldest_has_waited_long_enough(
    make_track, task_queue
):
    # given an artist changing things every minute for fourteen minutes
    artist = UserFactory()
    track = make_track(artist=artist)
    oldest = _switch(track)
    newest = _switch(track, state="denied")
    _age([oldest], minutes=14)
    _age([newest], minutes=1)

    # then nothing is sent while the oldest has waited under fifteen minutes
    assert receipts_send_pending() == 0

    # and once it has, both go, although the changes go on
    _age([oldest], minutes=15)
    assert receipts_send_pending() == 1
    assert _links(mail.outbox[0]) == [str(oldest.public_id), str(newest.public_id)]


def test_each_artist_gets_their_own_e_mail(make_track, task_queue):
    one, two = UserFactory(), UserFactory()
    receipts = [_switch(make_track(artist=one)), _switch(make_track(artist=two))]
    _age(receipts, minutes=3)

    assert receipts_send_pending() == 2

    assert sorted(m.to[0] for m in mail.outbox) == sorted([one.email, two.email])
    assert all(m.subject == "[Refrain] Your consent receipt" for m in mail.outbox)


def test_a_daily_choice_waits_for_the_daily_hour(make_track, settings, task_queue):
    # given the daily hour an hour from now (so the last one was ~23 hours
    # ago), and an artist who chose daily e-mails
    now = timezone.now()
    settings.REFRAIN_RECEIPT_DAILY_HOUR = (now.hour + 1) % 24
    artist = UserFactory()
    _choose(artist, ReceiptEmails.DAILY)
    track = make_track(artist=artist)
    earlier = [_switch(track), _switch(track, use=TRAINING)]
    _age(earlier, minutes=30)

    # then changes since the last daily hour wait, however quiet
    assert receipts_send_pending() == 0
    assert mail.outbox == []

    # when the oldest came before the last daily hour
    _age(earlier[:1], hours=24, minutes=1)
    sent = receipts_send_pending()

    # then one e-mail has all of them, and says it is the daily one
    assert sent == 1
    [message] = mail.outbox
    assert message.subject == "[Refrain] Your consent receipts (2)"
    assert message.body.count("Your daily e-mail of receipts.") == 1
    assert "You get your receipts once a day" in message.body
    assert _links(message) == [str(r.public_id) for r in earlier]

    # and a change made after it waits for the next day
    later = _switch(track, use=MINING)
    _age([later], minutes=20)
    assert receipts_send_pending() == 0
    assert len(mail.outbox) == 1


def test_a_choice_of_none_sends_nothing_and_keeps_the_receipts(
    client, make_track, task_queue
):
    # given an artist who chose no receipt e-mails, and a change of theirs
    artist = UserFactory()
    _choose(artist, ReceiptEmails.NONE)
    receipt = _switch(make_track(artist=artist))

    # when beat sweeps (at once: nothing waits for a burst to end)
    sent = receipts_send_pending()

    # then nothing is sent, and the receipt is settled as not e-mailed
    assert sent == 0
    assert mail.outbox == []
    receipt.refresh_from_db()
    assert receipt.emailed_at is not None
    assert receipt.email_skipped is True
    assert receipt_email_send(receipt_id=receipt.pk) is False
    # and the receipt is still the artist's to download
    client.force_login(artist)
    response = client.get(f"/receipts/{receipt.public_id}.json")
    assert response.status_code == 200
    assert response.json() == receipt.payload


def test_a_change_of_choice_applies_to_receipts_not_sent_yet(make_track, task_queue):
    # given a receipt waiting in a burst, and then the artist chooses none
    artist = UserFactory()
    receipt = _switch(make_track(artist=artist))
    _choose(artist, ReceiptEmails.NONE)
    _age([receipt], minutes=1)

    # then it is settled without an e-mail at the next sweep
    assert receipts_send_pending() == 0
    assert mail.outbox == []
    assert Receipt.objects.get(pk=receipt.pk).email_skipped is True


def test_who_is_due_in_one_sweep(make_track, settings, task_queue):
    """The grouped query of the outbox picks exactly the artists the rule
    (``burst_is_due``) says are due."""
    now = timezone.now()
    settings.REFRAIN_RECEIPT_DAILY_HOUR = (now.hour + 1) % 24
    cases = {
        # name: (choice, ages of the artist's receipts in minutes, due)
        "each quiet": (None, [4], True),
        "each explicit, quiet": (ReceiptEmails.EACH, [3], True),
        "each busy": (None, [5, 1], False),
        "each past the cap": (ReceiptEmails.EACH, [16, 0], True),
        "daily, today": (ReceiptEmails.DAILY, [60], False),
        "daily, yesterday": (ReceiptEmails.DAILY, [24 * 60 + 1, 2], True),
        "none, just now": (ReceiptEmails.NONE, [0], True),
    }
    artists = {}
    for name, (choice, ages, _) in cases.items():
        artist = artists[name] = UserFactory()
        if choice:
            _choose(artist, choice)
        for age in ages:
            _age([_switch(make_track(artist=artist))], minutes=age)

    # the rule itself, as the sender applies it to one artist's receipts
    now = timezone.now()
    cutoffs = burst_cutoffs(now)
    for name, (choice, ages, due) in cases.items():
        oldest = now - timedelta(minutes=max(ages))
        newest = now - timedelta(minutes=min(ages))
        assert (
            burst_is_due(
                choice or ReceiptEmails.EACH,
                oldest=oldest,
                newest=newest,
                cutoffs=cutoffs,
            )
            is due
        ), name

    receipts_send_pending()

    e_mailed = {m.to[0] for m in mail.outbox}
    settled = set(
        Receipt.objects.filter(emailed_at__isnull=False)
        .values_list("artist__email", flat=True)
        .distinct()
    )
    assert settled == {artists[n].email for n, (_, _, due) in cases.items() if due}
    assert e_mailed == settled - {artists["none, just now"].email}


def test_a_failed_send_is_logged_and_not_repeated(
    make_track, monkeypatch, caplog, task_queue
):
    # given a burst that is over, and a mail server that refuses
    artist = UserFactory()
    receipt = _switch(make_track(artist=artist))
    _age([receipt], minutes=3)

    def refuse(self, *args, **kwargs):
        raise ConnectionRefusedError("mail server down")

    real_send = EmailMessage.send
    monkeypatch.setattr(EmailMessage, "send", refuse)

    # when beat sweeps
    assert receipts_send_pending() == 0

    # then the receipt was marked before the e-mail left (at most once): the
    # failure is logged, and no later sweep sends it twice
    assert Receipt.objects.get(pk=receipt.pk).emailed_at is not None
    assert "could not e-mail receipts" in caplog.text
    monkeypatch.setattr(EmailMessage, "send", real_send)
    assert receipts_send_pending() == 0
    assert mail.outbox == []


def test_a_receipt_whose_e_mail_cannot_be_written_waits_and_others_go(
    make_track, monkeypatch, caplog, task_queue
):
    # given two artists' bursts that are over, and composing the first
    # artist's e-mail fails
    broken, fine = UserFactory(), UserFactory()
    receipts = [_switch(make_track(artist=broken)), _switch(make_track(artist=fine))]
    _age(receipts[:1], minutes=5)
    _age(receipts[1:], minutes=4)
    real = receipt_outbox.receipt_message

    def compose(*, artist, receipts, frequency):
        if artist == broken:
            raise RuntimeError("template missing")
        return real(artist=artist, receipts=receipts, frequency=frequency)

    monkeypatch.setattr(receipt_outbox, "receipt_message", compose)

    # when beat sweeps
    assert receipts_send_pending() == 1

    # then the other artist got theirs; the first artist's receipt is left
    # unsent (nothing was marked) and the failure logged
    assert [m.to for m in mail.outbox] == [[fine.email]]
    assert Receipt.objects.get(pk=receipts[0].pk).emailed_at is None
    assert f"could not e-mail the receipts of artist {broken.pk}" in caplog.text

    # and once it can be written, the next sweep sends it
    monkeypatch.setattr(receipt_outbox, "receipt_message", real)
    assert receipts_send_pending() == 1
    assert mail.outbox[-1].to == [broken.email]


def test_with_bursts_off_each_commit_rings_the_sender(
    make_track, settings, task_queue, django_capture_on_commit_callbacks
):
    # given no burst window (the receipt is due at once)
    settings.REFRAIN_RECEIPT_BURST_MINUTES = 0
    task_queue.run_inline = True
    artist = UserFactory()
    track = make_track(artist=artist)

    # when a change commits
    with django_capture_on_commit_callbacks(execute=True):
        _switch(track)

    # then the doorbell rang, and its sender e-mailed the receipt at once
    assert task_queue.sent == [("send_pending_receipts", ())]
    assert [m.to for m in mail.outbox] == [[artist.email]]
