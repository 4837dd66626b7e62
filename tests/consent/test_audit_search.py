"""The audit's rows behind the numbers: drill-downs, the ledger search, their
CSV exports (streamed, every row), changes over time, checks run on demand,
a policy run's progress, and every refusal changing nothing."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

import consent.tasks
from accounts.services import GROUP_AUDITORS, GROUP_POLICY_ADMINS
from catalog.models import LicenseClass
from consent import audit
from consent.audit import audit_figures_refresh
from consent.models import AuditDay, LedgerEntry
from consent.policy import policy_current
from consent.services import consent_set, policy_publish
from tests.consent.conftest import _staff_in
from tests.consent.helpers import GENAI, MINING
from tests.consent.pages import messages_of, table_rows
from tests.dbstate import database_state
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _set(track, use, state):
    consent_set(track=track, use=use, state=state, actor=track.artist, source="web")


def _csv_rows(response) -> list[list[str]]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def staff_client(client):
    client.force_login(_staff_in(GROUP_AUDITORS))
    return client


def test_a_drill_down_lists_the_tracks_behind_a_number_page_by_page(
    staff_client, make_track, monkeypatch
):
    monkeypatch.setattr(audit.search, "PAGE", 3)
    artist = UserFactory()
    tracks = [make_track(artist=artist, title=f"Tune {n}") for n in range(7)]
    for track in tracks[:5]:
        _set(track, GENAI, "granted")
    url = f"/audit/tracks/?license_class=independent&use={GENAI}&figure=granted"

    first = staff_client.get(url)
    rows = table_rows(first.content.decode(), "staff-table")
    assert [row[0] for row in rows] == ["Tune 0", "Tune 1", "Tune 2"]
    assert rows[0][4:] == ["Yes on the track", "✓ Eligible"]
    assert first.context["next_after"] == tracks[2].pk
    second = staff_client.get(f"{url}&after={tracks[2].pk}")
    rows = table_rows(second.content.decode(), "staff-table")
    assert [row[0] for row in rows] == ["Tune 3", "Tune 4"]
    assert second.context["next_after"] is None

    # the CSV has every one of them, whatever the page size
    exported = _csv_rows(staff_client.get(f"{url}&format=csv"))
    assert exported[0] == audit.DRILL_DOWN_COLUMNS
    assert [row[2] for row in exported[1:]] == [f"Tune {n}" for n in range(5)]
    assert {row[6] for row in exported[1:]} == {"Yes on the track"}


@pytest.mark.parametrize(
    "query",
    [
        "",
        "license_class=independent&use=genai-training",
        "license_class=nobody&use=genai-training&figure=granted",
        "license_class=independent&use=dancing&figure=granted",
        "license_class=independent&use=genai-training&figure=everything",
        "license_class=independent&use=genai-training&figure=granted&after=-1",
        "license_class=independent&use=genai-training&figure=granted&after=x",
    ],
)
def test_a_drill_down_refuses_what_it_cannot_count(staff_client, query):
    before = database_state()
    response = staff_client.get(f"/audit/tracks/?{query}")
    assert response.status_code == 400
    assert "does not name a figure the audit counts" in response.content.decode()
    assert database_state() == before


def test_the_ledger_search_filters_and_exports_every_match(staff_client, make_track):
    artist, other = UserFactory(), UserFactory()
    mine = make_track(artist=artist, title="Mine", isrc="GBAAA2400001")
    theirs = make_track(artist=other, title="Theirs")
    _set(mine, GENAI, "granted")
    _set(mine, MINING, "denied")
    _set(theirs, GENAI, "granted")

    by_artist = staff_client.get(f"/audit/ledger/?artist={artist.email.upper()}")
    assert {row.track_id for row in by_artist.context["rows"]} == {mine.pk}
    assert len(by_artist.context["rows"]) == 2
    by_isrc = staff_client.get("/audit/ledger/?isrc=GB-AAA-24-00001&use=data-mining")
    assert [row.use for row in by_isrc.context["rows"]] == [MINING]
    by_title = staff_client.get("/audit/ledger/?track=Theirs&source=web")
    assert [row.track_id for row in by_title.context["rows"]] == [theirs.pk]
    today = timezone.now().date()
    assert len(staff_client.get(f"/audit/ledger/?since={today}").context["rows"]) == 3
    later = today + timedelta(days=1)
    assert staff_client.get(f"/audit/ledger/?since={later}").context["rows"] == []

    exported = _csv_rows(
        staff_client.get(f"/audit/ledger/?artist={artist.email}&format=csv")
    )
    assert exported[0] == [name for name, _ in audit.LEDGER_COLUMNS]
    assert len(exported) == 3
    assert {row[2] for row in exported[1:]} == {mine.public_id}
    everything = _csv_rows(staff_client.get("/audit/ledger/?format=csv"))
    assert len(everything) - 1 == LedgerEntry.objects.count()


def test_the_ledger_csv_streams_in_chunks_and_misses_no_row(
    staff_client, make_track, monkeypatch
):
    monkeypatch.setattr(audit.search, "CHUNK", 2)
    track = make_track()
    for state in ("granted", "denied", "granted", "default", "denied"):
        _set(track, GENAI, state)

    rows = _csv_rows(staff_client.get("/audit/ledger/?format=csv"))

    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(LedgerEntry.objects.values_list("pk", flat=True))
    assert len(ids) == 5


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("artist=nobody@example.com", "No artist has that e-mail address or name."),
        ("track=No such song", "No track has that public id or title."),
        ("isrc=12", "An ISRC has 12 characters"),
        ("isrc=ZZAAA9900001", "No track has that ISRC."),
        ("use=dancing", "Select a valid choice"),
        ("since=yesterday", "Enter a valid date."),
        ("since=2026-02-02&until=2026-01-01", "The end date is before the start date."),
    ],
)
def test_the_ledger_search_refuses_bad_input_with_a_sentence(
    staff_client, make_track, query, message
):
    _set(make_track(), GENAI, "granted")
    before = database_state()

    response = staff_client.get(f"/audit/ledger/?{query}")
    csv_response = staff_client.get(f"/audit/ledger/?{query}&format=csv")

    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["rows"] == []
    assert csv_response.status_code == 400 and not csv_response.streaming
    assert database_state() == before


def test_changes_over_time_per_day_and_class(staff_client, make_track, monkeypatch):
    today = timezone.now().astimezone(UTC).date()

    def at(days_ago: int):
        moment = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
        moment -= timedelta(days=days_ago)
        monkeypatch.setattr(timezone, "now", lambda: moment)

    first, second = make_track(), make_track()
    at(2)
    _set(first, GENAI, "granted")
    at(1)
    _set(first, GENAI, "denied")
    _set(second, GENAI, "granted")
    monkeypatch.undo()
    audit_figures_refresh(triggered_by="test")

    response = staff_client.get("/audit/?days=30")
    line = response.context["timeline"]
    assert len(line.days) == 30 and line.days[-1] == today
    independent = {series.license_class: series for series in line.grants}
    assert independent["independent"].values[-3:] == [1, 1, 0]
    denials = {s.license_class: s for s in line.denials}["independent"]
    assert denials.values[-3:] == [0, 1, 0]
    eligible = {s.license_class: s for s in line.eligible}["independent"]
    assert eligible.values[-4:] == [0, 1, 1, 1]
    assert {s.license_class: s for s in line.eligible}["label"].values == [0] * 30
    # the table beside the charts has the same numbers, newest day first
    page = response.content.decode()
    assert "Grants per day" in page and "<svg" in page

    # a change today is added by the next refresh; the days before are kept
    _set(second, GENAI, "denied")
    audit_figures_refresh(triggered_by="test")
    line = staff_client.get("/audit/?days=30&use=genai-training").context["timeline"]
    assert {s.license_class: s for s in line.denials}["independent"].values[-3:] == [
        0,
        1,
        1,
    ]
    assert {s.license_class: s for s in line.eligible}["independent"].values[-4:] == [
        0,
        1,
        1,
        0,
    ]
    assert AuditDay.objects.filter(day=today - timedelta(days=2)).exists()
    # another use has none of it
    line = staff_client.get(f"/audit/?days=30&use={MINING}").context["timeline"]
    assert sum(sum(s.values) for s in line.grants) == 0


def test_a_range_the_page_does_not_offer_is_refused_with_a_sentence(staff_client):
    response = staff_client.get("/audit/?days=1000")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert len(response.context["timeline"].days) == 30


def test_a_policy_admin_runs_a_check_in_the_background(client, monkeypatch):
    rung = []
    monkeypatch.setattr(
        consent.tasks.check_consent, "delay", lambda *args: rung.append(args)
    )
    admin = _staff_in(GROUP_POLICY_ADMINS)
    client.force_login(admin)

    response = client.post("/audit/checks/run/", {"kind": "consent"}, follow=True)

    assert rung == [(admin.email,)]
    assert "is queued: a worker runs it in the background" in " ".join(
        messages_of(response)
    )


@pytest.mark.parametrize("kind", ["", "everything"])
def test_an_unknown_check_is_refused(client, monkeypatch, kind):
    monkeypatch.setattr(consent.tasks.check_consent, "delay", pytest.fail)
    client.force_login(_staff_in(GROUP_POLICY_ADMINS))
    response = client.post("/audit/checks/run/", {"kind": kind}, follow=True)
    assert messages_of(response) == ["There is no such check."]


def test_an_auditor_cannot_run_checks(client, monkeypatch):
    monkeypatch.setattr(consent.tasks.check_consent, "delay", pytest.fail)
    client.force_login(_staff_in(GROUP_AUDITORS))
    response = client.post("/audit/checks/run/", {"kind": "consent"}, follow=True)
    assert messages_of(response) == ["Only policy admins start checks."]
    page = response.content.decode()
    assert "Run now" not in page


def test_a_policy_run_in_progress_shows_its_progress(staff_client, make_track):
    tracks = [make_track() for _ in range(4)]
    rules = {**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): "opt_out"}
    version = policy_publish(rules=rules, actor=UserFactory(), reason="Opt-out")
    version.applied_through_track_id = tracks[1].pk
    version.save(update_fields=["applied_through_track_id"])

    page = staff_client.get("/audit/").content.decode()
    assert f"Policy version {version.number} is being applied" in page
    fragment = staff_client.get("/audit/policy-run/").content.decode()
    assert f'value="{tracks[1].pk}"' in fragment

    version.applied_at = timezone.now()
    version.save(update_fields=["applied_at"])
    assert "is being applied" not in staff_client.get("/audit/").content.decode()


def test_the_side_by_side_table_exports_as_csv(staff_client, make_track):
    _set(make_track(), GENAI, "granted")
    audit_figures_refresh(triggered_by="test")

    rows = _csv_rows(staff_client.get("/audit/side-by-side.csv"))

    assert rows[0][:4] == ["use", "license_class", "figure", "count"]
    found = {(r[0], r[1], r[2]): r[3:5] for r in rows[1:]}
    assert found[(GENAI, "Independent", "granted")] == ["1", "100"]
    assert found[(GENAI, "Label-licensed", "tracks")] == ["0", ""]
    assert len(rows) - 1 == 4 * 2 * 9


def test_every_figure_has_its_query_on_the_how_page(staff_client):
    page = staff_client.get("/audit/how/").content.decode()
    for figure in audit.FIGURES:
        assert f'id="figure-{figure.key}"' in page
    assert "SUM(CASE WHEN tc.eligible THEN 1 ELSE 0 END) AS eligible" in page
    assert 'id="platform"' in page and 'id="timeline"' in page


def test_overdue_acknowledgements_are_counted_by_the_refresh(staff_client, make_track):
    from consent.models import Partner
    from consent.partners import partner_create
    from tests.consent.withdrawals import withdraw

    partner = partner_create(name="Acme AI", ack_days=1)
    Partner.objects.filter(pk=partner.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    withdraw(make_track(), at=timezone.now() - timedelta(days=10))
    late = partner_create(name="Zed AI", ack_days=1)

    # before a refresh the page says when it will know; after, the count
    page = staff_client.get("/audit/").content.decode()
    assert "Counted at the next refresh" in page
    audit_figures_refresh(triggered_by="test")
    Partner.objects.filter(pk=late.pk).update(name="Zed AI (renamed)")
    rows = {
        r[0]: r[2] for r in table_rows(staff_client.get("/audit/").text, "ack-table")
    }
    assert rows == {"Acme AI": "! 1", "Zed AI (renamed)": "0"}
