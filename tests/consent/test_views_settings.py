"""``/settings/consent/``: the receipt e-mails form beside the defaults."""

import html

import pytest
from django.contrib.messages import get_messages

from consent.models import ArtistDefault, ReceiptEmailPreference, ReceiptEmails
from consent.selectors import receipt_emails_for_artist
from tests.consent.helpers import GENAI
from tests.dbstate import database_state

pytestmark = pytest.mark.django_db

URL = "/settings/consent/"


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _radio(page: str, value: str) -> str:
    start = page.index(f'<input type="radio" name="receipt_emails" value="{value}"')
    return page[start : page.index(">", start) + 1]


def test_the_page_shows_the_choice_with_its_label_and_help(signed_in, settings):
    settings.REFRAIN_RECEIPT_DAILY_HOUR = 7

    page = signed_in.get(URL)

    assert page.status_code == 200
    text = html.unescape(page.text)
    assert '<h2 id="receipt-emails">Receipt e-mails</h2>' in text
    assert "<legend>E-mail me my receipts</legend>" in text
    assert "each receipt stays on its track's page to download" in text
    assert "After each change: changes you make within a few minutes" in text
    assert "Once a day: one e-mail soon after 07:00 UTC" in text
    assert "Never: no receipt e-mails (your receipts stay on your track pages)" in text
    assert _radio(page.text, "each").endswith(" checked>")
    assert not _radio(page.text, "daily").endswith(" checked>")


@pytest.mark.parametrize(
    ("choice", "said"),
    [
        ("daily", "Saved. You get one e-mail a day with that day's receipts."),
        (
            "none",
            "Saved. You get no receipt e-mails; your receipts stay on your track "
            "pages.",
        ),
    ],
)
def test_saving_a_choice(signed_in, artist, choice, said):
    response = signed_in.post(
        URL, {"section": "receipt-emails", "receipt_emails": choice}
    )

    assert response.status_code == 302
    assert response["Location"] == URL
    assert messages_of(response) == [said]
    assert receipt_emails_for_artist(artist=artist) == choice
    page = signed_in.get(URL)
    assert _radio(page.text, choice).endswith(" checked>")


def test_saving_the_same_choice_says_nothing_changed(signed_in, artist):
    response = signed_in.post(
        URL, {"section": "receipt-emails", "receipt_emails": "each"}
    )

    assert messages_of(response) == ["Nothing changed."]
    assert not ReceiptEmailPreference.objects.exists()


@pytest.mark.parametrize(
    ("posted", "error"),
    [
        (
            {"receipt_emails": "weekly"},
            "That is not one of these choices, so nothing was changed. "
            "Choose after each change, once a day, or never.",
        ),
        ({}, "Choose when to get your receipts by e-mail."),
    ],
)
def test_a_bad_choice_is_refused_with_a_clear_error(signed_in, artist, posted, error):
    ReceiptEmailPreference.objects.create(artist=artist, frequency="daily")
    before = database_state()

    response = signed_in.post(URL, {"section": "receipt-emails", **posted})

    assert response.status_code == 400
    assert error in html.unescape(response.text)
    assert 'class="field-errors" role="alert"' in response.text
    assert database_state() == before
    assert receipt_emails_for_artist(artist=artist) == ReceiptEmails.DAILY


def test_a_post_of_neither_form_changes_nothing(signed_in, artist):
    ArtistDefault.objects.create(artist=artist, use=GENAI, decision="granted")
    before = database_state()

    response = signed_in.post(URL, {"section": "other", "receipt_emails": "none"})

    assert response.status_code == 400
    assert "That form was not understood; nothing was changed." in response.text
    assert database_state() == before


def test_the_defaults_form_still_saves_defaults_only(signed_in, artist):
    # the defaults form says which it is; an e-mail choice sent along is not
    # read
    response = signed_in.post(
        URL, {"section": "defaults", GENAI: "granted", "receipt_emails": "none"}
    )

    assert messages_of(response) == [
        "Your defaults were saved. 0 tracks kept their answer."
    ]
    assert ArtistDefault.objects.get(artist=artist, use=GENAI).decision == "granted"
    assert receipt_emails_for_artist(artist=artist) == ReceiptEmails.EACH
