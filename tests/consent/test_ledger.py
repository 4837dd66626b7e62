import sqlite3
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from catalog.models import Track
from consent.ledger import GENESIS_HASH, VerifyReport, verify_chains, verify_heads
from consent.models import CheckRun, LedgerAnchor, LedgerEntry
from consent.policy import policy_current
from consent.services import (
    bulk_change_start,
    consent_set,
    defaults_set,
    ledger_anchor_create,
    policy_apply,
    policy_publish,
)
from tests.consent.helpers import append_only_triggers_off, track_reclassify
from tests.factories import LabelFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

REFUSED = "consent ledger rows are append-only"


@pytest.fixture
def history(make_track):
    """Three tracks of two artists with a mix of changes from every source."""
    one, two = UserFactory(), UserFactory()
    first, second = make_track(artist=one), make_track(artist=one)
    third = make_track(artist=two)
    consent_set(track=first, use="genai-training", state="granted", actor=one,
                source="web")  # fmt: skip
    consent_set(track=first, use="genai-training", state="denied", actor=one,
                source="api")  # fmt: skip
    consent_set(track=first, use="data-mining", state="granted", actor=one,
                source="web")  # fmt: skip
    bulk_change_start(
        artist=one,
        use="ai-training",
        state="granted",
        actor=one,
        track_public_ids=[first.public_id, second.public_id],
    )
    defaults_set(
        artist=two,
        defaults={"ai-inference": "granted"},
        apply_to_existing=True,
        actor=two,
    )
    track_reclassify(second, license_class="label", label=LabelFactory().name)
    admin = StaffFactory(is_superuser=True)
    version = policy_publish(
        rules={**policy_current().rules, ("independent", "data-mining"): "opt_out"},
        actor=admin,
        reason="Mining is opt-out",
    )
    policy_apply(version_id=version.pk)
    return first, second, third


def test_history_has_rows_from_every_kind_of_change(history):
    sources = set(LedgerEntry.objects.values_list("source", flat=True))

    assert sources == {"web", "api", "bulk", "import", "policy"}


def test_verify_chains_is_clean_after_a_mix_of_changes(history):
    first, second, third = history

    report = verify_chains()

    assert report.breaks == []
    assert report.tracks_checked == 3
    assert report.rows_checked == LedgerEntry.objects.count()
    # first: three single changes and the bulk one (mining was granted already,
    # so opt-out changes nothing); second: the bulk one and signing to a label;
    # third: its new default and the opt-out policy
    assert [
        LedgerEntry.objects.filter(track=t).count() for t in (first, second, third)
    ] == [4, 2, 2]


def test_verify_chains_reads_the_same_in_tiny_chunks(history):
    whole = verify_chains()
    tiny = verify_chains(chunk=1)

    assert (tiny.tracks_checked, tiny.rows_checked, tiny.breaks) == (
        whole.tracks_checked,
        whole.rows_checked,
        [],
    )


def test_verify_chains_for_some_tracks_only(history):
    first, second, third = history

    report = verify_chains(track_ids=[third.pk])

    assert (report.tracks_checked, report.rows_checked) == (1, 2)


# --- the database refuses changes ---------------------------------------------------


def _refused(action) -> str:
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        action()
    return str(refused.value)


def test_the_database_refuses_orm_updates(history):
    entry = LedgerEntry.objects.order_by("pk").first()

    message = _refused(
        lambda: LedgerEntry.objects.filter(pk=entry.pk).update(new_state="denied")
    )
    assert REFUSED in message
    assert "UPDATE" in message

    entry.note = "edited"
    assert REFUSED in _refused(lambda: entry.save(update_fields=["note"]))

    stored = LedgerEntry.objects.get(pk=entry.pk)
    assert (stored.new_state, stored.note) == ("granted", "")


def test_the_database_refuses_orm_deletes(history):
    count = LedgerEntry.objects.count()
    entry = LedgerEntry.objects.order_by("pk").first()

    message = _refused(lambda: LedgerEntry.objects.filter(pk=entry.pk).delete())
    assert REFUSED in message
    assert "DELETE" in message
    assert REFUSED in _refused(lambda: LedgerEntry.objects.all().delete())
    assert REFUSED in _refused(entry.delete)

    assert LedgerEntry.objects.count() == count


def test_the_database_refuses_raw_sql(history):
    count = LedgerEntry.objects.count()
    entry = LedgerEntry.objects.order_by("pk").first()

    def update():
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE consent_ledgerentry SET entry_hash = %s WHERE id = %s",
                [GENESIS_HASH, entry.pk],
            )

    def delete():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM consent_ledgerentry")

    assert REFUSED in _refused(update)
    assert REFUSED in _refused(delete)
    assert LedgerEntry.objects.count() == count
    assert LedgerEntry.objects.get(pk=entry.pk).entry_hash == entry.entry_hash


def test_the_sqlite_triggers_of_the_migration(db):
    """SQLite's triggers differ (a DELETE is allowed once the track is gone, so
    a test flush works); run the migration's statements on a real SQLite."""
    import importlib

    migration = importlib.import_module("consent.migrations.0002_ledger_append_only")
    database = sqlite3.connect(":memory:")
    database.execute("CREATE TABLE catalog_track (id INTEGER PRIMARY KEY)")
    database.execute(
        "CREATE TABLE consent_ledgerentry (id INTEGER PRIMARY KEY, "
        "track_id INTEGER, note TEXT)"
    )
    for statement in migration.SQLITE_FORWARD:
        database.execute(statement)
    database.execute("INSERT INTO catalog_track (id) VALUES (1), (2)")
    database.execute(
        "INSERT INTO consent_ledgerentry (id, track_id, note) "
        "VALUES (10, 1, ''), (20, 2, '')"
    )

    with pytest.raises(sqlite3.IntegrityError, match="UPDATE refused"):
        database.execute("UPDATE consent_ledgerentry SET note = 'x' WHERE id = 10")
    with pytest.raises(sqlite3.IntegrityError, match="DELETE refused"):
        database.execute("DELETE FROM consent_ledgerentry WHERE id = 10")
    assert database.execute(
        "SELECT id, note FROM consent_ledgerentry ORDER BY id"
    ).fetchall() == [(10, ""), (20, "")]

    # once the track itself is gone (a test database flush), its rows may go
    database.execute("DELETE FROM catalog_track WHERE id = 2")
    database.execute("DELETE FROM consent_ledgerentry WHERE id = 20")
    assert database.execute("SELECT id FROM consent_ledgerentry").fetchall() == [(10,)]


# --- verify_ledger ------------------------------------------------------------------


def _verify_ledger() -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_ledger", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def _behind_the_triggers_back(sql: str, params: list) -> None:
    """Run SQL with the append-only triggers switched off (in this transaction
    only: both databases roll it back with the test)."""
    with append_only_triggers_off() as cursor:
        cursor.execute(sql, params)


def test_verify_ledger_reports_a_clean_ledger(history, make_track):
    # given besides the history a label track nobody changed (version 0, no
    # chain: nothing about it was ever eligible)
    assert make_track(signed=True).consent_version == 0

    code, out, err = _verify_ledger()

    assert code == 0
    assert out == (
        f"tracks checked 4, chains checked 3, rows checked "
        f"{LedgerEntry.objects.count()}, breaks 0\n"
    )
    assert err == ""


def test_verify_ledger_finds_a_row_altered_behind_the_triggers_back(history):
    first, second, third = history
    rows = LedgerEntry.objects.count()
    # given someone turned a "denied" into "granted" without the trigger seeing
    altered = LedgerEntry.objects.get(track=first, consent_version=2)
    assert (altered.old_state, altered.new_state) == ("granted", "denied")
    _behind_the_triggers_back(
        "UPDATE consent_ledgerentry SET new_state = 'granted' WHERE id = %s",
        [altered.pk],
    )
    assert LedgerEntry.objects.get(pk=altered.pk).new_state == "granted"

    # when the ledger is verified
    code, out, err = _verify_ledger()

    # then exactly that row is named and the command fails
    assert code == 1
    assert err == (
        f"BREAK track {first.public_id} row {altered.pk} (version 2): "
        "row content does not match its hash\n"
    )
    assert out == (
        f"tracks checked 3, chains checked 3, rows checked {rows}, breaks 1\n"
    )


def test_verify_ledger_finds_a_deleted_row(history):
    first, second, third = history
    rows = LedgerEntry.objects.count()
    removed = LedgerEntry.objects.get(track=first, consent_version=2)
    after = LedgerEntry.objects.get(track=first, consent_version=3)
    _behind_the_triggers_back(
        "DELETE FROM consent_ledgerentry WHERE id = %s", [removed.pk]
    )

    code, out, err = _verify_ledger()

    # the gap is reported at the row after it, whose link is broken too
    assert code == 1
    assert err.splitlines() == [
        f"BREAK track {first.public_id} row {after.pk} (version 3): "
        "version 3 where 2 was expected",
        f"BREAK track {first.public_id} row {after.pk} (version 3): "
        "link to the previous row is broken",
    ]
    assert out == (
        f"tracks checked 3, chains checked 3, rows checked {rows - 1}, breaks 2\n"
    )


# --- chain heads against the tracks' versions --------------------------------------


def test_verify_ledger_finds_a_chain_cut_at_its_end(history):
    # given the newest row of a chain deleted behind the triggers' back: what
    # is left is a valid chain by itself
    first, second, third = history
    rows = LedgerEntry.objects.count()
    first.refresh_from_db()
    assert first.consent_version == 4
    newest = LedgerEntry.objects.get(track=first, consent_version=4)
    kept = LedgerEntry.objects.get(track=first, consent_version=3)
    _behind_the_triggers_back(
        "DELETE FROM consent_ledgerentry WHERE id = %s", [newest.pk]
    )
    assert verify_chains().breaks == []

    # when the ledger is verified
    code, out, err = _verify_ledger()

    # then the track is named at the row that is now its head
    assert code == 1
    assert err == (
        f"BREAK track {first.public_id} row {kept.pk} (version 3): the newest row "
        "is version 3 but the track is at version 4: the end of the chain is "
        "missing\n"
    )
    assert out == (
        f"tracks checked 3, chains checked 3, rows checked {rows - 1}, breaks 1\n"
    )
    run = CheckRun.objects.get()
    assert (run.problems, run.ok) == (1, False)


def test_verify_ledger_finds_a_whole_chain_deleted(history):
    # given every row of a track deleted behind the triggers' back
    first, second, third = history
    third.refresh_from_db()
    assert third.consent_version == 2
    _behind_the_triggers_back(
        "DELETE FROM consent_ledgerentry WHERE track_id = %s", [third.pk]
    )
    assert verify_chains().breaks == []

    code, out, err = _verify_ledger()

    assert code == 1
    assert err == (
        f"BREAK track {third.public_id} no row (version 2): the track is at "
        "version 2 but its whole chain is missing\n"
    )
    assert out.startswith("tracks checked 3, chains checked 2, ")


def test_verify_heads_names_a_head_ahead_of_its_track(history):
    # given a track whose version was lowered behind the services' back
    first, second, third = history
    Track.objects.filter(pk=second.pk).update(consent_version=1)
    head = LedgerEntry.objects.get(track=second, consent_version=2)

    report = verify_heads(report=VerifyReport(), chunk=1)

    assert [str(problem) for problem in report.breaks] == [
        f"track {second.public_id} row {head.pk} (version 2): the newest row is "
        "version 2, ahead of the track's version 1"
    ]
    assert report.heads_checked == 3


@pytest.mark.postgres
def test_the_database_refuses_truncate(history):
    # given the ledger and an anchor of it
    count = LedgerEntry.objects.count()
    ledger_anchor_create()

    def truncate(sql: str):
        def action():
            with connection.cursor() as cursor:
                # the test's own transaction holds deferred foreign-key checks,
                # which PostgreSQL will not truncate past: run them first
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(sql)

        return action

    # when anyone truncates the ledger, its tracks (cascading) or the anchors
    # then each is refused, naming the table, and nothing is gone
    for sql, table in [
        ("TRUNCATE consent_ledgerentry", "consent_ledgerentry"),
        ("TRUNCATE catalog_track CASCADE", "consent_ledgerentry"),
        ("TRUNCATE consent_ledgeranchor", "consent_ledgeranchor"),
    ]:
        assert f"{table} is append-only (TRUNCATE refused)" in _refused(truncate(sql))
    assert LedgerEntry.objects.count() == count
    assert Track.objects.count() == 3
    assert LedgerAnchor.objects.count() == 1
