"""The artist's choice of receipt e-mails (``receipt_emails_set``)."""

import pytest

from consent.models import ReceiptEmailPreference, ReceiptEmails
from consent.selectors import receipt_emails_for_artist
from consent.services import ConsentError, receipt_emails_set
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_artist_gets_an_e_mail_per_burst_until_they_choose():
    artist = UserFactory()

    assert receipt_emails_for_artist(artist=artist) == ReceiptEmails.EACH
    # choosing what is already so writes nothing
    assert receipt_emails_set(artist=artist, frequency="each") is False
    assert not ReceiptEmailPreference.objects.exists()


def test_a_choice_is_saved_and_changed():
    artist, other = UserFactory(), UserFactory()

    assert receipt_emails_set(artist=artist, frequency="daily") is True
    assert receipt_emails_set(artist=artist, frequency="daily") is False
    assert receipt_emails_set(artist=artist, frequency="none") is True

    assert receipt_emails_for_artist(artist=artist) == ReceiptEmails.NONE
    assert receipt_emails_for_artist(artist=other) == ReceiptEmails.EACH
    assert ReceiptEmailPreference.objects.count() == 1


@pytest.mark.parametrize("frequency", ["", "weekly", "EACH", "none ", "dai\x00ly"])
def test_an_unknown_choice_is_refused_and_nothing_changes(frequency):
    artist = UserFactory()
    receipt_emails_set(artist=artist, frequency="daily")

    with pytest.raises(ConsentError, match="after each change, once a day, or never"):
        receipt_emails_set(artist=artist, frequency=frequency)

    assert receipt_emails_for_artist(artist=artist) == ReceiptEmails.DAILY
