"""The e-mail about a policy change (``consent.policy_mail``): per use, how
many of the artist's tracks became or stopped being eligible, named, and the
rule now in force; plain text with no HTML entities."""

import pytest
from django.core import mail

from consent.models import ReceiptEmailPreference, ReceiptEmails
from consent.policy import policy_current
from consent.services import consent_set, policy_apply, policy_publish
from tests.consent.helpers import GENAI, MINING
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _publish_and_apply(changed: dict, reason: str) -> None:
    version = policy_publish(
        rules={**policy_current().rules, **changed},
        actor=UserFactory(),
        reason=reason,
    )
    assert policy_apply(version_id=version.pk).done


def test_the_policy_e_mail_counts_and_names_the_tracks_that_changed(make_track):
    # given an artist with three tracks: two silent, one with a no for
    # generative AI; and an artist with one silent track who chose no
    # receipt e-mails
    artist = UserFactory(display_name="Rosie O'Hara & Friends")
    make_track(artist=artist, title="Don't Stop & Go")
    make_track(artist=artist, title="b-side")
    said_no = make_track(artist=artist, title="Mine")
    consent_set(track=said_no, use=GENAI, state="denied", actor=artist, source="web")
    alone = UserFactory()
    make_track(artist=alone, title="Solo")
    ReceiptEmailPreference.objects.create(artist=alone, frequency=ReceiptEmails.NONE)
    mail.outbox.clear()

    # when generative AI training and data mining of independent music
    # become opt-out
    _publish_and_apply(
        {("independent", GENAI): "opt_out", ("independent", MINING): "opt_out"},
        reason="Because it's fair & square",
    )

    # then the artist reads which uses of how many of their tracks became
    # eligible, named, and the rules now
    by_artist = {m.to[0]: m for m in mail.outbox}
    body = by_artist[artist.email].body
    assert body.startswith("Hello Rosie O'Hara & Friends,\n")
    assert "version 2). The reason it gives:\n\n  Because it's fair & square\n" in body
    assert "What this changed for your 3 tracks:\n" in body
    assert (
        "  - Generative AI training: 2 of your 3 tracks became eligible: "
        "“b-side” and “Don't Stop & Go”\n"
        "  - Data mining: all 3 of your tracks became eligible: “b-side”, "
        "“Don't Stop & Go” and “Mine”\n"
    ) in body
    assert (
        "The rules that apply to them now:\n"
        "  - Generative AI training of independent music: allowed unless you "
        "say no\n"
        "  - Data mining of independent music: allowed unless you say no\n"
    ) in body
    for entity in ("&#x27;", "&#39;", "&amp;", "&quot;"):
        assert entity not in body
    # and a policy change is told even to an artist who chose no receipts
    solo = by_artist[alone.email].body
    assert "What this changed for your track:\n" in solo
    assert "  - Generative AI training: your track “Solo” became eligible\n" in solo
    assert len(mail.outbox) == 2


def test_tracks_that_stop_being_eligible(make_track):
    artist = UserFactory()
    tracks = [make_track(artist=artist, title=f"T{n:02d}") for n in range(23)]
    for track in tracks[:22]:
        consent_set(track=track, use=GENAI, state="granted", actor=artist, source="web")
    mail.outbox.clear()

    _publish_and_apply({("independent", GENAI): "prohibited"}, reason="No more")

    [message] = mail.outbox
    names = ", ".join(f"“T{n:02d}”" for n in range(20))
    assert (
        "  - Generative AI training: 22 of your 23 tracks stopped being "
        f"eligible: {names} and 2 more\n"
    ) in message.body
    assert (
        "  - Generative AI training of independent music: never allowed\n"
        in message.body
    )
