"""The transparency audit (``consent.audit``, ``/audit/`` and
``/transparency/``): every figure of a catalogue with known counts on both
pages, the figures' SQL against a Python reading of the same rows, the
parity finding under opt-in and opt-out, the public page's threshold and
anonymity, and who may open what."""

import random

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group

from accounts.services import GROUP_AUDITORS
from catalog.models import LicenseClass
from consent.audit import audit_figures_refresh
from consent.models import ArtistDefault, AuditSnapshot, Rule, TrackConsent
from consent.policy import policy_current
from consent.services import consent_set, defaults_set, policy_apply, policy_publish
from consent.uses import USE_ORDER
from tests.consent.helpers import GENAI, MINING
from tests.consent.pages import table_rows
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

FIGURE_LABELS = [
    "Tracks",
    "Artists",
    "Yes on the track",
    "No on the track",
    "Yes by default",
    "No by default",
    "No answer",
    "Eligible",
    "Eligible without a grant",
]


def _set(track, use, state):
    consent_set(track=track, use=use, state=state, actor=track.artist, source="web")


@pytest.fixture
def catalogue(make_track):
    """10 independent tracks of 3 artists and 4 label-licensed tracks of one,
    with answers whose counts the tests know (see each test)."""
    a, b, c, lab = (UserFactory() for _ in range(4))
    defaults_set(
        artist=a, defaults={GENAI: "granted"}, apply_to_existing=False, actor=a
    )
    defaults_set(artist=b, defaults={GENAI: "denied"}, apply_to_existing=False, actor=b)
    defaults_set(
        artist=lab, defaults={GENAI: "granted"}, apply_to_existing=False, actor=lab
    )
    tracks_a = [make_track(artist=a, title=f"Song of A {n}") for n in range(5)]
    tracks_b = [make_track(artist=b, title=f"Song of B {n}") for n in range(3)]
    tracks_c = [make_track(artist=c, title=f"Song of C {n}") for n in range(2)]
    for n in range(4):
        make_track(artist=lab, signed=True, title=f"Signed {n}")
    _set(tracks_a[0], GENAI, "granted")
    _set(tracks_a[1], GENAI, "denied")
    _set(tracks_b[0], GENAI, "granted")
    _set(tracks_a[1], MINING, "denied")
    return {"artists": (a, b, c, lab), "independent": tracks_a + tracks_b + tracks_c}


# GENAI, independent: tracks 10, artists 3, yes on the track 2 (A0, B0), no 1
# (A1), yes by default 3 (A2-A4), no by default 2 (B1, B2), no answer 2 (C),
# eligible 5 (opt-in: the yeses), eligible without a grant 0.
GENAI_INDEPENDENT = ["10", "3", "2 20%", "1 10%", "3 30%", "2 20%", "2 20%"]
GENAI_INDEPENDENT += ["5 50%", "0 0%"]
# GENAI, label: 4 tracks of one artist, all on a default yes; never eligible.
GENAI_LABEL = ["4", "1", "0 0%", "0 0%", "4 100%", "0 0%", "0 0%", "0 0%", "0 0%"]


def _side_table(page: str, use: str) -> list[list[str]]:
    return [
        [row[0].removesuffix(" how"), *row[1:]]
        for row in table_rows(page, f"side-{use}")
    ]


def _staff(client, group=GROUP_AUDITORS):
    from tests.consent.conftest import _staff_in

    user = _staff_in(group)
    client.force_login(user)
    return user


def test_every_figure_is_right_on_the_staff_page(client, catalogue):
    audit_figures_refresh(triggered_by="test")
    _staff(client)

    page = client.get("/audit/").content.decode()

    rows = _side_table(page, GENAI)
    assert [row[0] for row in rows] == FIGURE_LABELS
    assert [row[1] for row in rows] == GENAI_INDEPENDENT
    assert [row[2] for row in rows] == GENAI_LABEL
    mining = {row[0]: row[1:] for row in _side_table(page, MINING)}
    assert mining["No on the track"] == ["1 10%", "0 0%"]
    assert mining["No answer"] == ["9 90%", "4 100%"]
    assert mining["Eligible"] == ["0 0%", "0 0%"]
    # the shipped policy: opt-in for independent, prohibited for label
    assert "treated differently for 4 of 4 uses" in page
    assert (
        "Generative AI training: label-licensed content is never used; independent "
        "content is used only with the artist&#x27;s yes." in page
    )


def test_every_figure_is_right_on_the_public_page_with_the_threshold(client, catalogue):
    audit_figures_refresh(triggered_by="test")

    response = client.get("/transparency/")

    assert response.status_code == 200
    page = response.content.decode()
    rows = _side_table(page, GENAI)
    fewer = "fewer than 10"
    # 10 independent tracks are shown; every smaller count is not, nor its share
    assert [row[1] for row in rows] == ["10", *[fewer] * 8]
    assert [row[2] for row in rows] == [fewer] * 9
    assert "%" not in "".join(row[1] + row[2] for row in rows)
    # no track, artist or e-mail address is named anywhere on it
    for track in catalogue["independent"]:
        assert track.title not in page and track.public_id not in page
    for artist in catalogue["artists"]:
        assert artist.email not in page and artist.display_name not in page
    assert "/audit/" not in page  # nor a link into the staff pages


def test_the_figures_equal_a_python_reading_of_the_rows(make_track):
    """The SQL of every figure against the rules' own reading, row by row,
    for a random catalogue (answers, defaults and eligibility as the services
    store them, under a policy with every rule)."""
    rng = random.Random(14)
    rules = {
        (LicenseClass.INDEPENDENT, use): rule
        for use, rule in zip(USE_ORDER, [*Rule.values, Rule.OPT_OUT], strict=True)
    } | {(LicenseClass.LABEL, use): Rule.OPT_OUT for use in USE_ORDER}
    rules[(LicenseClass.LABEL, MINING)] = Rule.PROHIBITED
    version = policy_publish(rules=rules, actor=UserFactory(), reason="All rules")
    policy_apply(version_id=version.pk)
    artists = [UserFactory() for _ in range(6)]
    for artist in artists[:4]:
        defaults_set(
            artist=artist,
            defaults={use: rng.choice(["granted", "denied"]) for use in USE_ORDER[:3]},
            apply_to_existing=False,
            actor=artist,
        )
    for _ in range(30):
        track = make_track(artist=rng.choice(artists), signed=rng.random() < 0.3)
        for use in USE_ORDER:
            state = rng.choice(["granted", "denied", "default", "default"])
            if state != "default" and policy_current().rule(
                track.license_class, use
            ) != (Rule.PROHIBITED):
                _set(track, use, state)

    figures = audit_figures_refresh(triggered_by="test").figures["side_by_side"]

    defaults = {
        (artist_id, use): decision
        for artist_id, use, decision in ArtistDefault.objects.values_list(
            "artist_id", "use", "decision"
        )
    }
    expected: dict[str, dict] = {}
    for row in TrackConsent.objects.all():
        cell = expected.setdefault(
            f"{row.license_class}:{row.use}", {"artists": set(), "tracks": 0}
        )
        default = defaults.get((row.artist_id, row.use))
        answer = row.decision or default
        keys = {
            "granted": row.decision == "granted",
            "denied": row.decision == "denied",
            "default_granted": not row.decision and default == "granted",
            "default_denied": not row.decision and default == "denied",
            "no_answer": not row.decision and default is None,
            "eligible": row.eligible,
            "eligible_without_grant": row.eligible and answer != "granted",
        }
        cell["tracks"] += 1
        cell["artists"].add(row.artist_id)
        for key, counted in keys.items():
            cell[key] = cell.get(key, 0) + int(counted)
    assert expected, "the catalogue has rows"
    for key, cell in expected.items():
        cell["artists"] = len(cell["artists"])
        assert figures[key] == cell, key
    # and the opt-out class has tracks eligible although nobody said yes
    assert figures[f"independent:{MINING}"]["eligible_without_grant"] > 0


def test_opt_out_changes_the_parity_sentence_and_the_share(client, catalogue):
    audit_figures_refresh(triggered_by="test")
    _staff(client)
    before = client.get("/audit/").content.decode()
    assert "Data mining: label-licensed content is never used; independent " in before
    assert "eligible without a grant" not in before.split("parity-list")[1][:2000]

    # when data mining of independent music becomes opt-out
    rules = {**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): "opt_out"}
    version = policy_publish(rules=rules, actor=UserFactory(), reason="Opt-out")
    policy_apply(version_id=version.pk)
    audit_figures_refresh(triggered_by="test")

    # then 9 of the 10 independent tracks (one said no) are eligible without
    # a grant, and the sentence says so
    page = client.get("/audit/").content.decode()
    mining = {row[0]: row[1:] for row in _side_table(page, MINING)}
    assert mining["Eligible without a grant"] == ["9 90%", "0 0%"]
    assert (
        "Data mining: label-licensed content is never used; independent content "
        "is used unless the artist says no — 90% of independent tracks are "
        "eligible without a grant." in page
    )
    public = client.get("/transparency/").content.decode()
    assert "90% of independent tracks are eligible without a grant" not in public
    assert "fewer than 10 independent tracks are eligible without a grant" in public


def test_the_same_rules_for_both_classes_read_as_parity(client, catalogue):
    rules = {
        (cls, use): Rule.OPT_IN for cls in LicenseClass.values for use in USE_ORDER
    }
    version = policy_publish(rules=rules, actor=UserFactory(), reason="Equal")
    policy_apply(version_id=version.pk)
    audit_figures_refresh(triggered_by="test")

    page = client.get("/transparency/").content.decode()

    assert (
        "Independent and label-licensed content are treated the same for every use."
        in page
    )
    assert "treated differently" not in page


def test_access(client, catalogue):
    # anonymous: to the sign-in page, and back after it
    response = client.get("/audit/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    # an artist: the styled page that says it is for staff
    client.force_login(UserFactory())
    response = client.get("/audit/")
    assert response.status_code == 403
    assert "This page is for the platform" in response.content.decode()
    # staff outside the audit groups (with a second factor): refused too
    staff = StaffFactory()
    TOTP.activate(staff, generate_totp_secret())
    client.force_login(staff)
    for path in ("/audit/", "/audit/ledger/", "/audit/how/", "/audit/tracks/"):
        assert client.get(path).status_code == 403, path
    # anyone reads the public page
    client.logout()
    assert client.get("/transparency/").status_code == 200


def test_no_figures_yet_asks_a_worker_and_says_so(client, catalogue, monkeypatch):
    import consent.tasks
    from config import doorbell

    # the throttle is per process: another test may have rung a moment ago
    monkeypatch.setattr(doorbell, "_next_ring", {})
    monkeypatch.setattr(doorbell, "_trailing_at", {})
    rung = []
    monkeypatch.setattr(
        consent.tasks.refresh_audit_figures, "delay", lambda *a: rung.append(a)
    )
    monkeypatch.setattr(
        consent.tasks.refresh_audit_figures,
        "apply_async",
        lambda *a, **k: rung.append(a),
    )
    assert not AuditSnapshot.objects.exists()

    page = client.get("/transparency/").content.decode()

    assert "The figures are being computed" in page
    assert rung


def test_the_platforms_own_ai_is_shown_under_the_same_rules(client, catalogue):
    from consent.models import Consumer

    # the built-in registry receives two of the four uses
    registry = Consumer.objects.filter(kind=Consumer.Kind.REGISTRY)
    if not registry.update(uses=[GENAI, MINING]):
        Consumer.objects.create(
            name="Training-data registry",
            kind=Consumer.Kind.REGISTRY,
            uses=[GENAI, MINING],
        )
    audit_figures_refresh(triggered_by="test")
    _staff(client)

    page = client.get("/audit/").content.decode()

    assert "The platform's own AI" in page
    rows = {row[0]: row[1:] for row in table_rows(page, "platform-table")}
    # nothing delivered yet in this test: 0 may be used, 5 on the way
    assert rows["Generative AI training"][0].startswith("0 0%")
    assert "5 changes on the way" in rows["Generative AI training"][0]
    assert rows["Other AI training"] == ["Not received", "Not received"]


def test_staff_outside_groups_but_in_auditors_sees_it(client, catalogue):
    user = StaffFactory()
    user.groups.add(Group.objects.get_or_create(name=GROUP_AUDITORS)[0])
    TOTP.activate(user, generate_totp_secret())
    client.force_login(user)
    assert client.get("/audit/").status_code == 200
