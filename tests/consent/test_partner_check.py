"""The eligibility check: 10,000 items per call, answers as the consent rules
give them item by item, unknown never eligible, refusals that name the
offending items and change nothing; the look-up log folded per day."""

import random

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from catalog.isrc import normalise_isrc
from catalog.models import LicenseClass, Track
from consent.models import ArtistDefault, PartnerLookup, PartnerLookupDay, TrackConsent
from consent.partners import lookups_fold
from consent.partners.check import ISRC_PATTERN, compact_isrc
from consent.policy import eligibility_reason, is_eligible, policy_current
from consent.services import consent_set, defaults_set, policy_apply, policy_publish
from tests.consent.helpers import GENAI, MINING
from tests.consent.partner_helpers import partner_key, post_json
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CHECK = "/api/v1/eligibility/check"


def _expected(track: Track, use: str) -> tuple[bool, str]:
    """What the consent rules give for one track, read item by item."""
    consent = TrackConsent.objects.get(track=track, use=use)
    default = (
        ArtistDefault.objects.filter(artist=track.artist, use=use)
        .values_list("decision", flat=True)
        .first()
    )
    rule = policy_current().rule(track.license_class, use)
    return is_eligible(rule, consent.decision, default), eligibility_reason(
        rule, consent.decision, default
    )


@pytest.fixture
def catalogue(make_track):
    """Tracks of every kind: granted, denied, silent under a yes default,
    silent with no default, label-licensed; with ISRCs."""
    rng = random.Random(7)
    generous = UserFactory()
    defaults_set(
        artist=generous,
        defaults={MINING: "granted"},
        apply_to_existing=True,
        actor=generous,
    )
    artists = [UserFactory(), UserFactory(), generous]
    tracks = []
    for number in range(60):
        track = make_track(
            artist=artists[number % 3],
            isrc=f"GBAYE26{number:05d}",
            signed=number % 10 == 0,
        )
        state = rng.choice(["granted", "denied", "default", "default"])
        use = rng.choice([GENAI, MINING])
        if state != "default" and track.license_class == LicenseClass.INDEPENDENT:
            consent_set(track=track, use=use, state=state, actor=None, source="web")
        tracks.append(track)
    return tracks


def test_ten_thousand_mixed_items_answer_as_the_rules_do_item_by_item(
    client, catalogue, settings
):
    # given an opt-out rule for independent data mining (so silence is a yes)
    # and 10,000 items: known ISRCs (both spellings), public ids, unknown ones
    settings.REFRAIN_RECEIPT_BURST_MINUTES = 3.0  # no receipt doorbells
    rules = {**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): "opt_out"}
    version = policy_publish(rules=rules, reason="test", actor=UserFactory())
    policy_apply(version_id=version.pk)
    partner, key = partner_key()
    rng = random.Random(11)
    isrcs, ids = [], []
    for _ in range(6000):
        track = rng.choice(catalogue)
        isrc = track.isrc_display if rng.random() < 0.5 else track.isrc
        isrcs.append(
            isrc if rng.random() < 0.9 else f"ZZ-XXX-26-{rng.randrange(99999):05d}"
        )
    for _ in range(4000):
        ids.append(
            rng.choice(catalogue).public_id if rng.random() < 0.9 else "unknownTrack"
        )

    for use in (MINING, GENAI):
        # when the partner checks them
        answer = post_json(
            client, CHECK, {"use": use, "isrcs": isrcs, "track_ids": ids}, key
        )

        # then every item is answered in order, as the rules give it
        assert answer.status_code == 200, answer.content[:300]
        body = answer.json()
        assert len(body["items"]) == 10_000
        # what the rules give, track by track, read afresh
        expected = {}
        for track in catalogue:
            track.refresh_from_db()
            expected[track.pk] = (*_expected(track, use), track.consent_version)
        by_isrc = {track.isrc: track for track in catalogue}
        by_id = {track.public_id: track for track in catalogue}
        for item, sent in zip(body["items"], [*isrcs, *ids], strict=True):
            assert item.get("isrc", item.get("track_id")) == sent
            track = by_isrc.get(sent.replace("-", "")) or by_id.get(sent)
            if track is None:
                assert item == {
                    **item,
                    "known": False,
                    "eligible": False,
                    "reason": "unknown",
                    "id": None,
                }
                continue
            eligible, reason, version = expected[track.pk]
            assert (item["id"], item["eligible"], item["reason"]) == (
                track.public_id,
                eligible,
                reason,
            )
            assert item["consent_version"] == version
        counts = body["counts"]
        assert sum(counts.values()) == 10_000
        assert counts["unknown"] == sum(
            1 for item in body["items"] if not item["known"]
        )
        assert counts["eligible"] > 0 and counts["not_eligible"] > 0
        assert body["as_of"] and body["changes_cursor"].startswith("c")
    # both uses answered something eligible and something not
    reasons = {item["reason"] for item in body["items"]}
    assert {"unknown", "prohibited"} <= reasons


@pytest.mark.parametrize(
    ("body", "code", "named"),
    [
        (
            {"use": GENAI, "isrcs": ["GBAYE2600001"] * 10_001},
            "too_many_items",
            "10,001",
        ),
        (
            {
                "use": GENAI,
                "isrcs": ["GBAYE2600001"] * 5_001,
                "track_ids": ["a"] * 5_000,
            },
            "too_many_items",
            "10,001",
        ),
        (
            {"use": "face-recognition", "isrcs": ["GBAYE2600001"]},
            "invalid_request",
            "use",
        ),
        (
            {"use": GENAI, "isrcs": ["GBAYE2600001", "not an isrc", "US-RC1-76"]},
            "invalid_items",
            "isrcs[1], isrcs[2]",
        ),
        (
            {"use": GENAI, "track_ids": ["fine", "no spaces allowed"]},
            "invalid_items",
            "track_ids[1]",
        ),
        ({"use": GENAI, "isrcs": "GBAYE2600001"}, "invalid_request", "isrcs"),
    ],
)
def test_a_refused_check_names_what_is_wrong_and_logs_nothing(
    client, catalogue, body, code, named
):
    _, key = partner_key()

    answer = post_json(client, CHECK, body, key)

    assert answer.status_code == 400
    error = answer.json()
    assert error["code"] == code
    assert named in error["message"]
    if code == "invalid_items":
        assert [item["index"] for item in error["items"]] == (
            [1, 2] if "isrcs" in body else [1]
        )
    assert PartnerLookup.objects.count() == 0


def test_lookups_are_folded_per_partner_track_and_day_with_the_last_answer(
    client, catalogue
):
    # given two partners checking the same tracks, one of them twice
    first, first_key = partner_key("First AI")
    second, second_key = partner_key("Second AI")
    track = next(t for t in catalogue if t.license_class == LicenseClass.INDEPENDENT)
    consent_set(track=track, use=GENAI, state="granted", actor=None, source="web")
    post_json(client, CHECK, {"use": GENAI, "track_ids": [track.public_id]}, first_key)
    consent_set(track=track, use=GENAI, state="denied", actor=None, source="web")
    post_json(client, CHECK, {"use": GENAI, "isrcs": [track.isrc]}, first_key)
    post_json(
        client,
        CHECK,
        {"use": GENAI, "isrcs": [track.isrc, "ZZXXX2600001"]},
        second_key,
    )
    # the request only wrote one row per call
    assert PartnerLookup.objects.count() == 3

    # when the worker folds them
    assert lookups_fold() == 3

    # then one row per partner and day, with the count and the last answer
    days = {
        row.partner_id: row
        for row in PartnerLookupDay.objects.filter(
            track=track, day=timezone.localdate()
        )
    }
    assert days[first.pk].checks == 2 and days[first.pk].last_eligible is False
    assert days[second.pk].checks == 1 and days[second.pk].last_use == GENAI
    assert PartnerLookup.objects.count() == 0
    assert lookups_fold() == 0

    # and a later call on the same day adds to the same row
    post_json(client, CHECK, {"use": MINING, "track_ids": [track.public_id]}, first_key)
    lookups_fold()
    row = PartnerLookupDay.objects.get(track=track, partner=first)
    assert (row.checks, row.last_use) == (3, MINING)


def test_an_empty_check_is_an_empty_answer(client):
    _, key = partner_key()

    answer = post_json(client, CHECK, {"use": GENAI}, key)

    assert answer.status_code == 200
    assert answer.json()["items"] == []
    assert PartnerLookup.objects.count() == 0


@given(st.from_regex(ISRC_PATTERN, fullmatch=True))
def test_the_fast_isrc_form_is_the_catalogues_form(value):
    # every ISRC the API takes is stored as the catalogue would store it
    assert compact_isrc(value) == normalise_isrc(value)
