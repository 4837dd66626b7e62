"""What the receipt e-mails say (``consent.receipt_mail``): each track, use,
answer before and after and eligibility in words; a bulk change or a change
of defaults as it happened, its tracks named up to a bound; plain text with
no HTML entities."""

import pytest
from django.core import mail

from consent import receipt_mail
from consent.models import BulkJob, Receipt
from consent.services import (
    bulk_change_start,
    bulk_job_give_up,
    consent_set,
    defaults_set,
    receipts_send_pending,
)
from tests.consent.helpers import (
    GENAI,
    INFERENCE,
    MINING,
    TRAINING,
    bulk_job_after_first_chunk,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SITE = "https://refrain.example"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.REFRAIN_SITE_URL = f"{SITE}/"


def _sent() -> str:
    """Send every pending receipt (bursts are over at once in tests) and
    return the one e-mail's body."""
    receipts_send_pending()
    [message] = mail.outbox
    mail.outbox.clear()
    return message.body


def _lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.startswith("  - ")]


def test_a_switch_names_the_track_the_use_the_answers_and_eligibility(
    make_track, task_queue
):
    # given an artist and a track with an apostrophe and an ampersand
    artist = UserFactory(display_name="Rosie O'Hara & Friends")
    track = make_track(artist=artist, title="Don't Stop & Go")

    # when they say yes, then go back to their default (no)
    consent_set(track=track, use=GENAI, state="granted", actor=artist, source="web")
    consent_set(track=track, use=GENAI, state="default", actor=artist, source="web")
    body = _sent()

    # then the plain text says so in words, unescaped
    assert body.startswith("Hello Rosie O'Hara & Friends,\n")
    assert _lines(body) == [
        "  - “Don't Stop & Go”, Generative AI training: My default → Yes; now eligible",
        "  - “Don't Stop & Go”, Generative AI training: Yes → My default; "
        "no longer eligible",
    ]
    assert body.count("You changed this on Refrain") == 2
    for receipt in Receipt.objects.filter(artist=artist):
        assert f"  Receipt: {SITE}/receipts/{receipt.public_id}.json\n" in body
    assert f"at {SITE}/settings/consent/" in body
    for entity in ("&#x27;", "&#39;", "&amp;", "&quot;", "&lt;", "&gt;"):
        assert entity not in body


def test_an_api_change_and_a_change_that_keeps_eligibility(make_track, task_queue):
    artist = UserFactory()
    track = make_track(artist=artist, title="Quiet")

    consent_set(track=track, use=MINING, state="denied", actor=artist, source="api")
    body = _sent()

    assert "Changed through the Refrain API, on your behalf" in body
    assert _lines(body) == [
        "  - “Quiet”, Data mining: My default → No; still not eligible"
    ]


def test_a_bulk_change_says_what_happened_and_names_twenty_tracks(
    make_track, task_queue
):
    # given 25 tracks on default, one already yes, and one label-licensed
    artist = UserFactory()
    on_default = [make_track(artist=artist, title=f"Song {n:02d}") for n in range(25)]
    already = make_track(artist=artist, title="Already")
    consent_set(
        track=already, use=INFERENCE, state="granted", actor=artist, source="web"
    )
    label = make_track(artist=artist, title="Signed", signed=True)
    _sent()

    # when all of them are set to yes at once
    bulk_change_start(
        artist=artist,
        use=INFERENCE,
        state="granted",
        actor=artist,
        track_public_ids=[t.public_id for t in [*on_default, already, label]],
    )
    body = _sent()

    # then the e-mail gives the counts, and names the first 20 changed tracks
    # by title and how many more
    assert (
        "Bulk change on the track list: Input to AI features set to Yes on the "
        "27 tracks you chose: 25 changed, 1 already had that answer, 1 locked "
        "by the platform's policy and left as is."
    ) in body
    names = ", ".join(f"“Song {n:02d}”" for n in range(20))
    assert _lines(body) == [
        f"  - Input to AI features: My default → Yes on 25 tracks; 25 now "
        f"eligible: {names} and 5 more"
    ]


def test_a_bulk_change_of_the_tracks_matching_a_filter(make_track, task_queue):
    artist = UserFactory()
    for title in ("B side", "a side"):
        make_track(artist=artist, title=title)

    bulk_change_start(
        artist=artist,
        use=TRAINING,
        state="denied",
        actor=artist,
        filters={"use": TRAINING, "state": "default"},
    )
    body = _sent()

    assert (
        "Other AI training set to No on all 2 tracks that matched your filter: "
        "2 changed."
    ) in body
    # titles in alphabetical order, whatever their case
    assert _lines(body) == [
        "  - Other AI training: My default → No on 2 tracks; 2 still not "
        "eligible: “a side” and “B side”"
    ]


def test_new_defaults_followed_by_the_tracks_on_default(make_track, task_queue):
    # given two tracks on default and one with its own no
    artist = UserFactory()
    make_track(artist=artist, title="One")
    make_track(artist=artist, title="Two")
    own = make_track(artist=artist, title="Own")
    consent_set(track=own, use=TRAINING, state="denied", actor=artist, source="web")
    _sent()

    # when the default for other AI training becomes yes, for them too
    defaults_set(
        artist=artist,
        defaults={TRAINING: "granted"},
        apply_to_existing=True,
        actor=artist,
    )
    body = _sent()

    # then the e-mail says which default changed and what it did
    assert (
        "You changed your defaults on the settings page: Other AI training "
        "from not set to Yes. Your tracks on default follow the new "
        "default:"
    ) in body
    assert _lines(body) == [
        "  - Other AI training: 2 tracks still on My default, now Yes; 2 now "
        "eligible: “One” and “Two”"
    ]
    receipt = Receipt.objects.filter(artist=artist).latest("created_at")
    assert receipt.payload["source"] == "defaults"
    assert receipt.payload["collectionMethod"] == (
        "Change of defaults on the Refrain settings page"
    )
    assert receipt.payload["defaults"] == {
        "applied_to_existing": True,
        "changes": [
            {
                "use": TRAINING,
                "purpose": "Train other AI (recommendations, tagging, search)",
                "old": None,
                "new": "granted",
            }
        ],
    }


def test_new_defaults_for_new_uploads_only(make_track, task_queue):
    # given a track on default with a default of yes for data mining
    artist = UserFactory()
    defaults_set(
        artist=artist,
        defaults={MINING: "granted"},
        apply_to_existing=True,
        actor=artist,
    )
    make_track(artist=artist, title="Kept")
    assert not Receipt.objects.filter(artist=artist).exists()

    # when the default becomes no, for tracks uploaded from now on
    defaults_set(
        artist=artist,
        defaults={MINING: "denied"},
        apply_to_existing=False,
        actor=artist,
    )
    body = _sent()

    # then the track kept its yes, now set on the track itself
    assert (
        "You changed your defaults on the settings page: Data mining from Yes "
        "to No. The new default is for tracks you upload from now on; your "
        "tracks that were on default keep the answer they had, now set on each "
        "track:"
    ) in body
    assert _lines(body) == ["  - “Kept”, Data mining: My default → Yes; still eligible"]


def test_a_long_e_mail_lists_a_bounded_number_of_changes_and_counts_the_rest(
    make_track, monkeypatch, task_queue
):
    # given (the bounds made small) three changes in one e-mail
    monkeypatch.setattr(receipt_mail, "CHANGES_LISTED", 2)
    monkeypatch.setattr(receipt_mail, "ATTACHED_MAX", 2)
    artist = UserFactory()
    track = make_track(artist=artist, title="Busy")
    for state in ("granted", "denied", "granted"):
        consent_set(track=track, use=GENAI, state=state, actor=artist, source="web")

    receipts_send_pending()

    [message] = mail.outbox
    assert message.subject == "[Refrain] Your consent receipts (3)"
    assert len(_lines(message.body)) == 2
    assert (
        f"And 1 more change: each receipt is on its track's page, {SITE}/tracks/"
    ) in message.body
    assert "; the first 2 are attached." in message.body
    assert len(message.attachments) == 2


def test_a_bulk_change_that_stopped_says_how_far_it_got(
    make_track, settings, task_queue
):
    # given a background bulk change of three tracks that changed one and
    # then used up its attempts
    settings.REFRAIN_BULK_INLINE_LIMIT = 1
    artist = UserFactory()
    tracks = sorted(
        (make_track(artist=artist, title=f"T{n}") for n in range(3)),
        key=lambda t: t.pk,
    )
    job = bulk_job_after_first_chunk(
        artist=artist,
        tracks=tracks,
        status=BulkJob.Status.RUNNING,
        attempts=settings.REFRAIN_BULK_MAX_ATTEMPTS,
    )

    # when it is failed, with the receipt of what it saved
    assert bulk_job_give_up(job_id=job.pk)
    body = _sent()

    # then its e-mail says so
    assert (
        "Generative AI training set to Yes on the 3 tracks you chose: 1 "
        "changed. It stopped before the end: 2 tracks not reached."
    ) in body
    assert _lines(body) == [
        f"  - “{tracks[0].title}”, Generative AI training: My default → Yes; "
        "now eligible"
    ]
