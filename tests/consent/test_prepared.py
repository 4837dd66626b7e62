"""consent/prepared.py leans on Django's PostgreSQL internals and on psycopg's
prepared statements. These tests fail, naming what changed, when an upgrade of
Django or psycopg moves what it relies on; the ones that need a server are
marked ``postgres``."""

import ast
import inspect
import textwrap

import psycopg
import pytest
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.postgresql import base as postgresql
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper
from django.test.utils import CaptureQueriesContext
from django.utils.functional import cached_property

from consent.ledger import verify_chains
from consent.prepared import PreparedCursor, prepared_cursor
from consent.services import consent_set
from tests.factories import UserFactory

WRAPPER = postgresql.DatabaseWrapper
PROBE = "SELECT %s::int + 1 AS refrain_prepared_probe"
UPDATE_HINT = "consent/prepared.py relies on it: check the release notes and update it"


# --- what the module calls, as it calls it ----------------------------------------


@pytest.mark.parametrize(
    "name, parameters",
    [
        ("close_if_health_check_failed", ["self"]),
        ("ensure_connection", ["self"]),
        ("validate_thread_sharing", ["self"]),
        ("make_cursor", ["self", "cursor"]),
        ("make_debug_cursor", ["self", "cursor"]),
    ],
)
def test_the_connection_methods_it_calls_keep_their_signatures(
    name, parameters, django_db_blocker
):
    # pytest-django swaps ensure_connection for its blocker outside DB tests
    with django_db_blocker.unblock():
        method = getattr(WRAPPER, name, None)

    assert callable(method), (
        f"Django's PostgreSQL DatabaseWrapper lost {name}(); {UPDATE_HINT}"
    )
    found = list(inspect.signature(method).parameters)
    assert found == parameters, (
        f"DatabaseWrapper.{name} now takes ({', '.join(found)}), "
        f"consent/prepared.py calls it with ({', '.join(parameters)}); {UPDATE_HINT}"
    )


@pytest.mark.parametrize(
    "name, kind",
    [
        ("queries_logged", property),
        ("allow_thread_sharing", property),
        ("wrap_database_errors", cached_property),
    ],
)
def test_the_connection_attributes_it_reads_are_still_there(name, kind):
    found = inspect.getattr_static(WRAPPER, name, None)

    assert isinstance(found, kind), (
        f"DatabaseWrapper.{name} is now {found!r}, not a {kind.__name__}; {UPDATE_HINT}"
    )


def test_the_server_binding_cursor_still_takes_prepare():
    cursor_class = getattr(postgresql, "ServerBindingCursor", None)

    assert cursor_class is not None, (
        "django.db.backends.postgresql.base.ServerBindingCursor is gone "
        f"(or psycopg 3 is not installed); {UPDATE_HINT}"
    )
    assert issubclass(cursor_class, psycopg.Cursor), (
        f"ServerBindingCursor no longer binds on the server: its bases are "
        f"{cursor_class.__mro__}; {UPDATE_HINT}"
    )
    assert issubclass(PreparedCursor, cursor_class)
    parameters = inspect.signature(cursor_class.execute).parameters
    assert list(parameters)[:3] == ["self", "query", "params"], (
        f"psycopg's Cursor.execute is now {inspect.signature(cursor_class.execute)}"
        f"; {UPDATE_HINT}"
    )
    assert "prepare" in parameters and parameters["prepare"].kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ), (
        "psycopg's Cursor.execute no longer takes prepare=: "
        f"{inspect.signature(cursor_class.execute)}; {UPDATE_HINT}"
    )


def test_psycopg_connections_still_have_a_settable_prepare_threshold():
    found = inspect.getattr_static(psycopg.Connection, "prepare_threshold", None)

    assert isinstance(found, property) and found.fset is not None, (
        "psycopg.Connection.prepare_threshold is no longer a settable property "
        f"({found!r}); REFRAIN_DB_PREPARED_STATEMENTS and the tests rely on it"
    )


def _self_attributes(function) -> list[str]:
    """The ``self.<name>`` a method reads or calls, in source order."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    nodes = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ]
    return [node.attr for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset))]


def test_django_hands_out_a_cursor_the_way_prepared_cursor_repeats():
    # prepared_cursor() repeats what connection.cursor() does before handing
    # out a cursor; a new step there (a check, a wrapper) must be copied.
    steps = {
        "_cursor": _self_attributes(BaseDatabaseWrapper._cursor),
        "_prepare_cursor": _self_attributes(BaseDatabaseWrapper._prepare_cursor),
    }

    assert steps == {
        "_cursor": [
            "close_if_health_check_failed",
            "ensure_connection",
            "wrap_database_errors",
            "_prepare_cursor",
            "create_cursor",
        ],
        "_prepare_cursor": [
            "validate_thread_sharing",
            "queries_logged",
            "make_debug_cursor",
            "make_cursor",
        ],
    }, f"Django's connection.cursor() now runs {steps}; {UPDATE_HINT}"
    overridden = {"cursor", "_cursor", "_prepare_cursor"} & set(vars(WRAPPER))
    assert not overridden, (
        f"the PostgreSQL backend now overrides {sorted(overridden)}; {UPDATE_HINT}"
    )


# --- on a PostgreSQL server ------------------------------------------------------


@pytest.fixture
def own_connection(db):
    """A second connection to the test database, outside the test's
    transaction, so it can be closed and reopened (it only reads)."""
    conn = connections.create_connection("default")
    assert conn.settings_dict["NAME"] == connection.settings_dict["NAME"]
    yield conn
    conn.close()


def _prepared_probes(conn) -> int:
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%refrain_prepared_probe%"],
        )
        return cursor.fetchone()[0]


def _run_probe_twice(conn) -> None:
    cursor = prepared_cursor(conn)
    for value in (1, 2):
        cursor.execute(PROBE, [value])
        assert cursor.fetchone() == (value + 1,)


@pytest.mark.postgres
def test_the_settings_threshold_reaches_psycopg(own_connection):
    own_connection.ensure_connection()

    assert (
        own_connection.connection.prepare_threshold
        == (own_connection.settings_dict["OPTIONS"]["prepare_threshold"])
    ), "Django no longer passes OPTIONS['prepare_threshold'] to psycopg.connect()"


@pytest.mark.postgres
def test_the_cursor_prepares_what_it_runs(own_connection):
    # given a connection that has prepared nothing of ours
    own_connection.ensure_connection()
    assert _prepared_probes(own_connection) == 0

    # when a statement runs twice through the prepared cursor
    _run_probe_twice(own_connection)

    # then the server holds it prepared, once, on that connection
    assert _prepared_probes(own_connection) == 1, (
        "execute(prepare=True) no longer prepares the statement on the server; "
        f"{UPDATE_HINT}"
    )


@pytest.mark.postgres
def test_the_cursor_is_kept_per_connection_and_replaced_after_a_reconnect(
    own_connection,
):
    # given two cursors handed out on one connection
    first = prepared_cursor(own_connection)
    second = prepared_cursor(own_connection)

    # then they wrap one underlying cursor, of that connection
    assert isinstance(first, CursorWrapper) and isinstance(second, CursorWrapper)
    assert first.cursor is second.cursor
    assert isinstance(first.cursor, PreparedCursor)
    assert first.cursor.connection is own_connection.connection
    _run_probe_twice(own_connection)
    assert _prepared_probes(own_connection) == 1

    # when the connection is closed and opened again
    own_connection.close()
    third = prepared_cursor(own_connection)

    # then a new cursor serves the new connection, which prepares afresh
    assert third.cursor is not first.cursor
    assert third.cursor.connection is own_connection.connection
    assert _prepared_probes(own_connection) == 0
    _run_probe_twice(own_connection)
    assert _prepared_probes(own_connection) == 1


@pytest.mark.postgres
def test_threads_sharing_a_connection_get_a_cursor_each(own_connection):
    own_connection.inc_thread_sharing()
    try:
        first = prepared_cursor(own_connection)
        second = prepared_cursor(own_connection)
    finally:
        own_connection.dec_thread_sharing()

    assert first.cursor is not second.cursor


@pytest.mark.postgres
def test_the_cursor_is_a_debug_cursor_while_queries_are_logged(own_connection):
    # when queries are captured (as DEBUG or assertNumQueries do)
    with CaptureQueriesContext(own_connection) as queries:
        cursor = prepared_cursor(own_connection)
        cursor.execute(PROBE, [41])
        assert cursor.fetchone() == (42,)

    # then the statement was logged (without its text: Django reads that from
    # psycopg's client-side query, which a prepared statement does not have),
    # and outside the capture the cursor logs nothing
    assert isinstance(cursor, CursorDebugWrapper)
    assert [q["sql"] for q in queries.captured_queries] == [None]
    assert not isinstance(prepared_cursor(own_connection), CursorDebugWrapper)


@pytest.mark.postgres
def test_a_switch_is_one_prepared_call_and_works_unprepared(make_track):
    # given an artist's track
    artist = UserFactory()
    track = make_track(artist=artist)

    def switch(state):
        return consent_set(
            owner=artist,
            public_id=track.public_id,
            use="ai-training",
            state=state,
            actor=artist,
            source="web",
        )

    # when it is switched twice
    with CaptureQueriesContext(connection) as queries:
        switch("granted")
    switch("denied")

    # then each switch was one statement, prepared once on this connection
    assert len(queries) == 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements "
            "WHERE statement LIKE 'SELECT * FROM consent_switch(%%'"
        )
        assert cursor.fetchone()[0] == 1
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        prepared_before = cursor.fetchone()[0]

    # and with prepared statements off (a pooler) it still switches, preparing
    # nothing
    threshold = connection.connection.prepare_threshold
    connection.connection.prepare_threshold = None
    try:
        assert switch("granted").changed is True
        assert switch("denied").changed is True
    finally:
        connection.connection.prepare_threshold = threshold
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements")
        assert cursor.fetchone()[0] == prepared_before
    assert verify_chains(track_ids=[track.pk]).breaks == []
