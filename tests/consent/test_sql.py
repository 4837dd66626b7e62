"""The SQL the database runs as code is the versioned file in ``consent/sql/``:
the function installed in the database is the one the file defines, and the
migrations load the files they were made with."""

import importlib
from types import SimpleNamespace

import pytest
from django.db import connection

from consent.services.switch_postgres import SWITCH_FUNCTION
from consent.sql import SqlSourceChanged, sql_source

SCRATCH = "refrain_sql_check"

migration_0009 = importlib.import_module(
    "consent.migrations.0009_consent_switch_function"
)
migration_0013 = importlib.import_module(
    "consent.migrations.0013_consent_switch_from_sql_file"
)


def _definition(cursor, schema: str) -> dict:
    """What PostgreSQL holds of the one ``consent_switch`` in ``schema``: its
    body as stored, its signature and its whole definition (language,
    volatility, strictness, security, settings) with the schema left out."""
    cursor.execute(
        "SELECT p.prosrc, pg_get_function_arguments(p.oid), "
        "pg_get_function_result(p.oid), pg_get_functiondef(p.oid) "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.proname = 'consent_switch' AND n.nspname = %s",
        [schema],
    )
    rows = cursor.fetchall()
    assert len(rows) == 1, f"{len(rows)} functions consent_switch in {schema}"
    body, arguments, result, definition = rows[0]
    qualified = f"FUNCTION {schema}.consent_switch("  # plain names: unquoted
    assert definition.count(qualified) == 1
    return {
        "body": body,
        "arguments": arguments,
        "result": result,
        "definition": definition.replace(qualified, "FUNCTION consent_switch("),
    }


def installed_switch() -> dict:
    """The ``consent_switch`` the application calls (the only one there is)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = 'consent_switch'")
        assert cursor.fetchone()[0] == 1, "consent_switch is overloaded"
        cursor.execute("SELECT current_schema()")
        return _definition(cursor, cursor.fetchone()[0])


def defined_switch(source: str) -> dict:
    """The function ``source`` defines, as PostgreSQL stores it: the statement
    run in a scratch schema of the test's transaction (rolled back with it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA {SCRATCH}")
        cursor.execute("SELECT current_setting('search_path')")
        search_path = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('search_path', %s, true)", [SCRATCH])
        try:
            cursor.execute(source)
        finally:
            cursor.execute("SELECT set_config('search_path', %s, true)", [search_path])
        definition = _definition(cursor, SCRATCH)
        cursor.execute(f"DROP SCHEMA {SCRATCH} CASCADE")
    return definition


@pytest.mark.postgres
def test_the_installed_switch_is_the_one_its_file_defines(db):
    # given the database built by the migrations, and the file the code's
    # templates are made for
    source = sql_source(SWITCH_FUNCTION)

    # when the file's statement is run in a scratch schema
    defined = defined_switch(source)

    # then the installed function is the same, body and signature
    assert installed_switch() == defined
    # and the body is the text between the file's $$ markers, character for
    # character
    assert source.count("$$") == 2
    assert defined["body"] == source.split("$$")[1]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("edit", "replacement", "count"),
    [
        # one space in the body
        ("outcome := 'locked';", "outcome := 'locked' ;", 1),
        # a comment in the body
        ("    v_slots text[];\n", "    v_slots text[];  -- the slots\n", 1),
        # the case of a word
        ("outcome := 'unchanged';", "OUTCOME := 'unchanged';", 1),
        # a line ending
        ("    outcome := 'changed';\n", "    outcome := 'changed';\r\n", 1),
        # an attribute outside the body
        ("$$ LANGUAGE plpgsql;", "$$ LANGUAGE plpgsql STABLE;", 1),
        # an argument's name, everywhere it is used (the body still compiles)
        ("p_request_id", "p_request", 2),
        # an argument's type
        ("p_actor_id bigint,", "p_actor_id integer,", 1),
    ],
)
def test_any_edit_of_the_file_makes_it_differ_from_the_installed_switch(
    db, edit, replacement, count
):
    # given the file with one small edit
    source = sql_source(SWITCH_FUNCTION)
    assert source.count(edit) == count
    edited = source.replace(edit, replacement)

    # when the edited statement is run in a scratch schema
    defined = defined_switch(edited)

    # then it is not what is installed
    assert defined != installed_switch()


def test_version_1_is_the_function_migration_0009_installed():
    # given version 1's file and the statement migration 0009 ran
    source = sql_source("consent_switch_v1")

    # then the statement is the file's, character for character
    assert source[source.index("CREATE OR REPLACE FUNCTION") :] == (
        migration_0009.FORWARD.lstrip("\n")
    )


@pytest.mark.postgres
def test_migration_0013_installs_version_2_and_its_reverse_version_1(db):
    # given the database as the migrations left it
    version_1 = defined_switch(sql_source("consent_switch_v1"))
    version_2 = defined_switch(sql_source("consent_switch_v2"))
    assert version_1 != version_2

    # when 0013 is reversed, then version 1 is installed
    with connection.schema_editor() as editor:
        migration_0013.install_v1(None, editor)
    assert installed_switch() == version_1

    # when 0013 runs again, then version 2 is installed
    with connection.schema_editor() as editor:
        migration_0013.install_v2(None, editor)
    assert installed_switch() == version_2


def test_migration_0013_refuses_a_file_edited_after_it_was_made(
    db, tmp_path, monkeypatch
):
    # given version 2's file edited in place (one space)
    edited = sql_source("consent_switch_v2").replace(" LANGUAGE", "  LANGUAGE")
    (tmp_path / "consent_switch_v2.sql").write_text(edited, encoding="utf-8")
    monkeypatch.setattr("consent.sql.SQL_DIR", tmp_path)
    executed = []
    editor = SimpleNamespace(
        connection=connection, execute=lambda sql, params=None: executed.append(sql)
    )

    # when the migration runs, on either database, then it stops before
    # installing anything
    with pytest.raises(SqlSourceChanged, match="consent_switch_v2.sql changed"):
        migration_0013.install_v2(None, editor)
    assert executed == []


def test_every_versioned_file_is_pinned_by_its_migration():
    # then the pins of 0013 hold for the files as they are
    for name, sha256 in migration_0013.PINNED_SHA256.items():
        assert sql_source(name, sha256=sha256)
