"""Sentences that depend on the policy (issue 15): the promise about silence
on the home page, the footer, the track list (its lead and its empty state)
and the upload message is derived from the rules in force, so it is true
under opt-in, opt-out and prohibited alike, and follows a new version."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from catalog.models import LicenseClass
from consent.models import Rule
from consent.policy import Policy, policy_current, unset_default_words
from consent.services import policy_publish
from consent.uses import USE_ORDER
from tests.catalog.helpers import flac_bytes
from tests.consent.helpers import MINING
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOTHING = "Nothing you upload is used for AI unless you say yes."
MINING_OUT = (
    "Data mining of independent music is allowed unless you say no; nothing "
    "else is used for AI unless you say yes."
)
EXPECTED = {Rule.OPT_IN: NOTHING, Rule.OPT_OUT: MINING_OUT, Rule.PROHIBITED: NOTHING}
FALSE_UNDER_OPT_OUT = (
    "Nothing is used unless you say yes",
    "Until you say yes, the answer is no",
    "which are No until you change them",
    "Nothing is used for AI until you say yes",
    "switched off",
    "Opt-in, per track",
)


def _publish(rules):
    if rules != policy_current().rules:
        policy_publish(rules=rules, actor=UserFactory(), reason="A test of the words")


@pytest.mark.parametrize("rule", [Rule.OPT_IN, Rule.OPT_OUT, Rule.PROHIBITED])
def test_every_promise_follows_the_rule(client, make_track, rule):
    _publish({**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): rule})
    home = client.get("/").content.decode()  # a visitor's
    artist = UserFactory()
    client.force_login(artist)

    empty_list = client.get("/tracks/").content.decode()
    upload = client.get("/tracks/upload/").content.decode()
    track = make_track(artist=artist)
    listed = client.get("/tracks/").content.decode()
    detail = client.get(track.get_absolute_url()).content.decode()

    sentence = EXPECTED[rule].replace("'", "&#x27;")
    for name, page in {"empty list": empty_list, "home": home}.items():
        assert sentence in page, name
    # the upload page says it above the form and in the footer
    assert upload.count(sentence) == 2
    # the list says it in its lead and in the footer
    assert listed.count(sentence) == 2
    assert sentence in detail  # the footer
    for page in (empty_list, home, upload, listed, detail):
        for wrong in FALSE_UNDER_OPT_OUT:
            assert wrong not in page


def test_every_use_opt_out_says_so(client):
    _publish(
        {(cls, use): Rule.OPT_OUT for cls in LicenseClass.values for use in USE_ORDER}
    )
    page = client.get("/").content.decode()
    assert "Every use of your music for AI is allowed unless you say no." in page


def test_the_footer_follows_a_new_version_at_once(
    client, django_capture_on_commit_callbacks
):
    assert NOTHING in client.get("/").content.decode()  # cached from here on
    with django_capture_on_commit_callbacks(execute=True):
        _publish(
            {**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): "opt_out"}
        )
    assert MINING_OUT in client.get("/").content.decode()


@pytest.mark.parametrize("rule", [Rule.OPT_IN, Rule.OPT_OUT])
def test_the_upload_message_follows_the_rule(client, rule):
    _publish({**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): rule})
    client.force_login(UserFactory())
    response = client.post(
        "/tracks/upload/",
        {"files": SimpleUploadedFile("song.flac", flac_bytes(seconds=3))},
        follow=True,
    )

    text = " ".join(str(m) for m in response.context["messages"])
    assert "Uploaded 1 track." in text
    assert EXPECTED[rule] in text


SAME = "Independent and label-licensed music are held to the same rule for every use."


@pytest.mark.parametrize(
    ("label_rule", "expected"),
    [
        # as shipped, label-licensed music is never used: different for all four
        (
            None,
            "Independent and label-licensed music are held to different rules "
            "for 4 of 4 uses.",
        ),
        (Rule.OPT_IN, SAME),
        (Rule.OPT_OUT, None),  # independent stays opt-in: different again
    ],
)
def test_the_home_page_says_how_the_classes_are_treated(client, label_rule, expected):
    if label_rule is not None:
        _publish(
            {
                **policy_current().rules,
                **{(LicenseClass.LABEL, use): label_rule for use in USE_ORDER},
            }
        )
    rules = policy_current().rules
    if expected is None:
        differing = sum(
            rules[(LicenseClass.LABEL, use)] != rules[(LicenseClass.INDEPENDENT, use)]
            for use in USE_ORDER
        )
        expected = (
            "Independent and label-licensed music are held to different rules "
            f"for {differing} of 4 uses."
        )

    home = client.get("/").content.decode()

    assert expected in home
    assert ("same rule" in home) is (expected == SAME)


@pytest.mark.parametrize(
    ("rule", "unset"),
    [
        (Rule.OPT_IN, "Not set (No until you choose)"),
        (Rule.OPT_OUT, "Not set (Yes until you say no)"),
        (Rule.PROHIBITED, "Not set (the policy does not allow this use)"),
    ],
)
def test_the_defaults_page_says_what_not_set_means(client, rule, unset):
    # given a policy for data mining (label-licensed music: never, as shipped)
    # and an artist with independent tracks only (or none yet: uploads are)
    _publish({**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): rule})
    client.force_login(UserFactory())

    page = client.get("/settings/consent/")
    mining = page.context["form"][MINING]

    # then "not set" says what the policy makes of silence for this use
    assert dict(mining.field.choices)[""] == unset
    assert f"{unset}</label>" in page.content.decode()
    # and the lead says the policy's promise, never a flat "No"
    assert EXPECTED[rule].replace("'", "&#x27;") in page.content.decode()
    assert "it is <strong>No</strong>" not in page.content.decode()


@pytest.mark.parametrize(
    ("independent", "label", "unset"),
    [
        (
            Rule.OPT_IN,
            Rule.OPT_OUT,
            "Not set (No for independent music; Yes until you say no for "
            "label-licensed music)",
        ),
        (
            Rule.PROHIBITED,
            Rule.OPT_OUT,
            "Not set (not allowed for independent music; Yes until you say no "
            "for label-licensed music)",
        ),
        (
            Rule.OPT_OUT,
            Rule.PROHIBITED,
            "Not set (Yes until you say no for independent music; not allowed "
            "for label-licensed music)",
        ),
        (Rule.OPT_OUT, Rule.OPT_OUT, "Not set (Yes until you say no)"),
    ],
)
def test_not_set_names_each_class_where_the_rules_differ(independent, label, unset):
    policy = Policy(
        number=1,
        rules={
            (LicenseClass.INDEPENDENT, MINING): independent,
            (LicenseClass.LABEL, MINING): label,
        },
    )

    assert unset_default_words(policy, MINING) == unset


def test_not_set_names_the_classes_an_artist_with_both_has(client, make_track):
    # given an artist with an independent and a label-licensed track, and the
    # shipped rules (independent: opt-in; label-licensed: never)
    artist = UserFactory()
    make_track(artist=artist)
    make_track(artist=artist, signed=True)
    client.force_login(artist)

    mining = client.get("/settings/consent/").context["form"][MINING]

    # then "not set" says what it means for each of them
    assert dict(mining.field.choices)[""] == (
        "Not set (No for independent music; not allowed for label-licensed music)"
    )
