"""``check_consent`` and ``verify_ledger``: the stored state against the rules,
each run recorded as a ``CheckRun``, nightly through beat."""

from io import StringIO

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.models import Track
from config.celery_app import app as celery_app
from consent import tasks
from consent.models import ArtistDefault, CheckRun, LedgerEntry, TrackConsent
from consent.policy import SHIPPED_RULES
from consent.services import (
    checks,
    consent_check,
    consent_set,
    policy_apply,
    policy_publish,
)
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

CLEAN_V1 = "checked 4 tracks (16 consent rows) against policy v1: no differences"


def run_command(name: str, *args) -> tuple[int, list[str], list[str]]:
    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue().splitlines(), err.getvalue().splitlines()
    return 0, out.getvalue().splitlines(), err.getvalue().splitlines()


def check(*args) -> tuple[int, list[str]]:
    code, out, err = run_command("check_consent", *args)
    assert err == []
    return code, out


def raw_sql(sql: str, params: list) -> None:
    """A write behind the services' back."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def row_of(track, use) -> tuple:
    return (
        TrackConsent.objects.filter(track=track, use=use)
        .values_list("decision", "eligible", "artist_id", "license_class")
        .get()
    )


@pytest.fixture
def catalogue(make_track):
    """Four tracks in id order: ``plain`` (nothing decided), ``granted`` (a yes
    for genai-training), ``signed`` (label) of one artist, ``other`` of a
    second artist (nothing decided)."""
    one, two = UserFactory(), UserFactory()
    tracks = {
        "plain": make_track(artist=one),
        "granted": make_track(artist=one),
        "signed": make_track(artist=one, signed=True),
        "other": make_track(artist=two),
    }
    consent_set(
        track=tracks["granted"], use=GENAI, state="granted", actor=one, source="web"
    )
    return one, two, tracks


def test_a_clean_catalogue_passes_and_is_recorded(catalogue):
    code, out = check()

    assert code == 0
    assert out == [CLEAN_V1]
    run = CheckRun.objects.get()
    assert (run.kind, run.triggered_by, run.checked, run.problems, run.repaired) == (
        "consent",
        "command",
        16,
        0,
        0,
    )
    assert run.details == []
    assert run.finished_at is not None
    assert run.ok is True


# Each difference made behind the services' back, and how the check names it.
BREAKS = {
    "eligible-updated": (
        lambda t, two: raw_sql(
            "UPDATE consent_trackconsent SET eligible = TRUE "
            "WHERE track_id = %s AND use = %s",
            [t["plain"].pk, TRAINING],
        ),
        lambda t, two: (
            f"track {t['plain'].public_id} ai-training: stored eligible yes, the "
            "rules give no (rule opt_in, decision none, default none)"
        ),
        "1 wrong eligibility",
    ),
    "row-deleted": (
        lambda t, two: raw_sql(
            "DELETE FROM consent_trackconsent WHERE track_id = %s AND use = %s",
            [t["granted"].pk, MINING],
        ),
        lambda t, two: f"track {t['granted'].public_id} data-mining: no consent row",
        "1 missing row",
    ),
    "class-copy": (
        lambda t, two: raw_sql(
            "UPDATE consent_trackconsent SET license_class = 'label' "
            "WHERE track_id = %s AND use = %s",
            [t["plain"].pk, INFERENCE],
        ),
        lambda t, two: (
            f"track {t['plain'].public_id} ai-inference: copied licence class is "
            "label, the track's is independent"
        ),
        "1 wrong copy",
    ),
    "artist-copy": (
        lambda t, two: raw_sql(
            "UPDATE consent_trackconsent SET artist_id = %s "
            "WHERE track_id = %s AND use = %s",
            [two.pk, t["granted"].pk, TRAINING],
        ),
        lambda t, two: (
            f"track {t['granted'].public_id} ai-training: copied artist is user "
            f"{two.pk}, the track's is user {t['granted'].artist_id}"
        ),
        "1 wrong copy",
    ),
    "default-written-directly": (
        lambda t, two: ArtistDefault.objects.create(
            artist=two, use=GENAI, decision="granted"
        ),
        lambda t, two: (
            f"track {t['other'].public_id} genai-training: stored eligible no, the "
            "rules give yes (rule opt_in, decision none, default granted)"
        ),
        "1 wrong eligibility",
    ),
}


@pytest.mark.parametrize("name", list(BREAKS))
def test_a_difference_made_behind_the_services_back_is_named(catalogue, name):
    one, two, tracks = catalogue
    make_break, words, kind = BREAKS[name]
    # given one difference written behind the services' back
    make_break(tracks, two)
    ledger_before = LedgerEntry.objects.count()

    # when the catalogue is checked
    code, out = check()

    # then that difference is named and the command fails
    assert code == 1
    assert out == [
        words(tracks, two),
        f"checked 4 tracks (16 consent rows) against policy v1: 1 difference ({kind})",
    ]
    run = CheckRun.objects.get()
    assert (run.checked, run.problems, run.repaired, run.ok) == (16, 1, 0, False)
    assert run.details == [words(tracks, two)]
    # and a check without --repair writes nothing else
    assert LedgerEntry.objects.count() == ledger_before


def break_everything(tracks, two) -> list[str]:
    for make_break, _, _ in BREAKS.values():
        make_break(tracks, two)
    return [words(tracks, two) for _, words, _ in BREAKS.values()]


def test_repair_fixes_every_difference_through_the_services(catalogue):
    one, two, tracks = catalogue
    named = break_everything(tracks, two)
    versions = {name: track.consent_version for name, track in tracks.items()}
    ledger_before = set(LedgerEntry.objects.values_list("pk", flat=True))

    # when the check repairs what it finds
    code, out = check("--repair")

    # then every difference was named, in track and use order, then repaired
    run = CheckRun.objects.get()
    found_summary = (
        "checked 4 tracks (16 consent rows) against policy v1: 5 differences "
        "(1 missing row, 2 wrong copies, 2 wrong eligibility)"
    )
    assert code == 2  # found, and all repaired
    assert out == [
        named[0],  # plain ai-training
        named[2],  # plain ai-inference
        named[3],  # granted ai-training
        named[1],  # granted data-mining
        named[4],  # other genai-training
        found_summary,
        "repaired 3 tracks through the services (ledger source admin); checking again",
        CLEAN_V1,
    ]
    assert (run.checked, run.problems, run.repaired, run.ok) == (16, 5, 5, True)
    assert run.details == [*out[:5], f"repaired 3 tracks; after repair: {CLEAN_V1}"]
    # the rows are as the services would have them
    assert row_of(tracks["plain"], TRAINING) == ("", False, one.pk, "independent")
    assert row_of(tracks["plain"], INFERENCE) == ("", False, one.pk, "independent")
    assert row_of(tracks["granted"], TRAINING) == ("", False, one.pk, "independent")
    assert row_of(tracks["granted"], MINING) == ("", False, one.pk, "independent")
    assert row_of(tracks["other"], GENAI) == ("", True, two.pk, "independent")
    # each eligibility change is one ledger row of source admin; copies and a
    # row recreated on a default that leaves it ineligible write none
    new = LedgerEntry.objects.exclude(pk__in=ledger_before).order_by("pk")
    fields = ("track_id", "use", "old_eligible", "new_eligible", "old_state",
              "new_state", "source", "actor_id", "note", "request_id",
              "policy_version")  # fmt: skip
    admin_repair = ("default", "default", "admin", None, "check_consent repair",
                    f"check-consent-{run.pk}", 1)  # fmt: skip
    assert list(new.values_list(*fields)) == [
        (tracks["plain"].pk, TRAINING, True, False, *admin_repair),
        (tracks["other"].pk, GENAI, False, True, *admin_repair),
    ]
    for name, track in tracks.items():
        track.refresh_from_db()
        bumped = 1 if name in ("plain", "other") else 0
        assert track.consent_version == versions[name] + bumped, name

    # and a later check is clean, and the ledger's chains still verify
    assert check() == (0, [CLEAN_V1])
    assert run_command("verify_ledger")[0] == 0
    assert CheckRun.objects.filter(kind="consent").count() == 2


def test_a_recreated_row_that_starts_eligible_is_logged_as_admin(catalogue):
    one, two, tracks = catalogue
    # given a default of yes and a deleted row, both behind the services' back
    ArtistDefault.objects.create(artist=two, use=MINING, decision="granted")
    raw_sql(
        "UPDATE consent_trackconsent SET eligible = TRUE "
        "WHERE track_id = %s AND use = %s",
        [tracks["other"].pk, MINING],
    )
    raw_sql(
        "DELETE FROM consent_trackconsent WHERE track_id = %s AND use = %s",
        [tracks["other"].pk, MINING],
    )

    code, out = check("--repair")

    assert code == 2  # found, and all repaired
    assert out[0] == f"track {tracks['other'].public_id} data-mining: no consent row"
    assert out[-1] == CLEAN_V1
    assert row_of(tracks["other"], MINING) == ("", True, two.pk, "independent")
    entry = LedgerEntry.objects.filter(track=tracks["other"]).latest("pk")
    assert (entry.use, entry.old_eligible, entry.new_eligible, entry.source) == (
        MINING,
        False,
        True,
        "admin",
    )
    assert run_command("verify_ledger")[0] == 0


def test_limit_names_the_first_differences_and_counts_all(catalogue):
    one, two, tracks = catalogue
    named = break_everything(tracks, two)

    code, out = check("--limit", "2")

    assert code == 1
    assert out == [
        named[0],
        named[2],
        "checked 4 tracks (16 consent rows) against policy v1: 5 differences "
        "(1 missing row, 2 wrong copies, 2 wrong eligibility), the first 2 named",
    ]
    run = CheckRun.objects.get()
    assert (run.problems, run.details) == (5, out[:2])


def test_a_run_keeps_its_notes_within_the_bound_on_details(catalogue, monkeypatch):
    one, two, tracks = catalogue
    named = break_everything(tracks, two)
    monkeypatch.setattr(checks, "DETAIL_LIMIT", 3)

    code, out = check("--repair")

    # the command names all five; the run keeps two and the repair's note
    assert code == 2  # found, and all repaired
    assert len(out) == 8
    run = CheckRun.objects.get()
    assert run.details == [
        named[0],
        named[2],
        f"repaired 3 tracks; after repair: {CLEAN_V1}",
    ]


def test_the_check_is_set_based(catalogue, make_track):
    # given the same check on four tracks, then on eight
    with CaptureQueriesContext(connection) as small:
        consent_check(triggered_by="test")
    for _ in range(4):
        make_track()
    with CaptureQueriesContext(connection) as large:
        outcome = consent_check(triggered_by="test")

    # then it costs the same number of statements
    assert outcome.found.rows == 32
    assert len(large.captured_queries) == len(small.captured_queries)


def test_tracks_the_new_policy_has_not_reached_are_skipped(
    catalogue, policy_admin, task_queue
):
    one, two, tracks = catalogue
    # given policy v2 (silence is a yes for genai-training) applied to the
    # first track only: "other" is still on the previous rules
    version = policy_publish(
        rules={**SHIPPED_RULES, ("independent", GENAI): "opt_out"},
        actor=policy_admin,
        reason="Opt-out for generative AI",
    )
    policy_apply(version_id=version.pk, batch_size=1, max_batches=1)
    assert row_of(tracks["plain"], GENAI)[1] is True
    assert row_of(tracks["other"], GENAI)[1] is False
    # and two differences: one on a track the policy reached, one row missing
    # after it (a missing row does not depend on the policy)
    raw_sql(
        "UPDATE consent_trackconsent SET eligible = TRUE "
        "WHERE track_id = %s AND use = %s",
        [tracks["plain"].pk, TRAINING],
    )
    raw_sql(
        "DELETE FROM consent_trackconsent WHERE track_id = %s AND use = %s",
        [tracks["other"].pk, MINING],
    )

    code, out = check()

    # then the skipped tracks are counted and why, not reported
    skipped = (
        "eligibility of 3 tracks not checked: policy v2 is still being applied "
        f"(done through track id {tracks['plain'].pk}); the tracks after it are "
        "on the previous rules until it reaches them"
    )
    assert code == 1
    assert out == [
        f"track {tracks['plain'].public_id} ai-training: stored eligible yes, the "
        "rules give no (rule opt_in, decision none, default none)",
        f"track {tracks['other'].public_id} data-mining: no consent row",
        skipped,
        "checked 4 tracks (16 consent rows) against policy v2: 2 differences "
        "(1 missing row, 1 wrong eligibility)",
    ]
    assert CheckRun.objects.get().details == out[:3]

    # when the policy run completes, nothing is skipped any more
    assert policy_apply(version_id=version.pk).done
    code, out = check()
    assert code == 1
    assert out[-1] == (
        "checked 4 tracks (16 consent rows) against policy v2: 2 differences "
        "(1 missing row, 1 wrong eligibility)"
    )
    assert not any(line.startswith("eligibility of") for line in out)


# --- the ledger ------------------------------------------------------------------


def test_verify_ledger_records_a_check_run(catalogue):
    code, out, err = run_command("verify_ledger")

    rows = LedgerEntry.objects.count()
    assert (code, err) == (0, [])
    assert out == [
        f"tracks checked {Track.objects.count()}, chains checked 1, rows checked "
        f"{rows}, breaks 0"
    ]
    run = CheckRun.objects.get()
    assert (run.kind, run.triggered_by, run.checked, run.problems, run.details) == (
        "ledger",
        "command",
        rows,
        0,
        [],
    )
    assert run.ok is True


@pytest.mark.postgres
def test_verify_ledger_records_the_breaks_it_finds(catalogue):
    one, two, tracks = catalogue
    entry = LedgerEntry.objects.get(track=tracks["granted"])
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE consent_ledgerentry SET new_state = 'denied' WHERE id = %s",
            [entry.pk],
        )
        cursor.execute("SET LOCAL session_replication_role = origin")

    code, out, err = run_command("verify_ledger")

    named = (
        f"track {tracks['granted'].public_id} row {entry.pk} (version 1): "
        "row content does not match its hash"
    )
    assert code == 1
    assert err == [f"BREAK {named}"]
    run = CheckRun.objects.get()
    assert (run.kind, run.problems, run.repaired, run.details, run.ok) == (
        "ledger",
        1,
        0,
        [named],
        False,
    )


# --- nightly through beat --------------------------------------------------------


def test_both_checks_run_nightly_through_beat():
    schedule = django_settings.CELERY_BEAT_SCHEDULE

    assert schedule["check-consent"] == {
        "task": "consent.check_consent",
        "schedule": crontab(hour=3, minute=15),
    }
    assert schedule["verify-ledger"] == {
        "task": "consent.verify_ledger",
        "schedule": crontab(hour=3, minute=45),
    }
    # beat sends the tasks by name: a worker knows both
    assert tasks.check_consent.name == "consent.check_consent"
    assert tasks.verify_ledger.name == "consent.verify_ledger"
    assert {"consent.check_consent", "consent.verify_ledger"} <= set(celery_app.tasks)


def test_the_nightly_tasks_record_their_runs(catalogue):
    one, two, tracks = catalogue
    raw_sql(
        "UPDATE consent_trackconsent SET eligible = TRUE "
        "WHERE track_id = %s AND use = %s",
        [tracks["plain"].pk, TRAINING],
    )
    ledger_before = LedgerEntry.objects.count()

    tasks.check_consent()
    tasks.verify_ledger()

    consent_run = CheckRun.objects.get(kind="consent")
    ledger_run = CheckRun.objects.get(kind="ledger")
    assert (
        consent_run.triggered_by,
        consent_run.checked,
        consent_run.problems,
        consent_run.repaired,
        consent_run.ok,
    ) == ("beat", 16, 1, 0, False)
    assert (ledger_run.triggered_by, ledger_run.checked, ledger_run.problems) == (
        "beat",
        ledger_before,
        0,
    )
    # the nightly check repairs nothing
    assert LedgerEntry.objects.count() == ledger_before
    assert row_of(tracks["plain"], TRAINING)[1] is True


def test_staff_read_the_check_runs_in_the_admin(catalogue, client):
    # given a nightly run that found one difference
    one, two, tracks = catalogue
    raw_sql(
        "UPDATE consent_trackconsent SET eligible = TRUE "
        "WHERE track_id = %s AND use = %s",
        [tracks["plain"].pk, TRAINING],
    )
    tasks.check_consent()
    superuser = StaffFactory(is_superuser=True)
    TOTP.activate(superuser, generate_totp_secret())  # staff pages need MFA
    client.force_login(superuser)

    # when a superuser opens the check runs in the admin
    listing = client.get("/admin/consent/checkrun/")
    run = CheckRun.objects.get()
    page = client.get(f"/admin/consent/checkrun/{run.pk}/change/")

    # then the run is listed and can be read, never changed
    assert listing.status_code == 200
    assert "beat" in listing.text
    assert page.status_code == 200
    assert 'name="_save"' not in page.text
    assert client.post(f"/admin/consent/checkrun/{run.pk}/delete/").status_code == 403
    assert CheckRun.objects.count() == 1
