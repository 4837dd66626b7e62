"""The one place that leans on Django's PostgreSQL internals: a cursor whose
statements the server binds and prepares (``consent_switch()`` calls).

Django's cursors bind parameters on the client and never prepare, so the
switch's two templates (kilobytes of text) would be quoted into the SQL and
parsed and planned by the server on every call. This module builds a cursor
on Django's ``ServerBindingCursor`` and repeats what ``connection.cursor()``
does before handing one out. ``tests/consent/test_prepared.py`` fails loudly
when an upgrade of Django or psycopg changes what this relies on.
"""

from django.db.backends.postgresql.base import ServerBindingCursor


class PreparedCursor(ServerBindingCursor):
    """Binds on the server and prepares every statement it runs (unless the
    connection's ``prepare_threshold`` is None)."""

    def execute(self, query, params=None, **kwargs):
        return super().execute(query, params, prepare=True)


def prepared_cursor(conn):
    """A Django cursor on ``conn`` whose statements are bound and prepared by
    the server.

    For the switch only: its two templates are kilobytes of text that a
    client-side cursor would quote into the SQL and the server would parse
    and plan on every call; prepared once per connection, a call sends just
    the values (``REFRAIN_DB_PREPARED_STATEMENTS``, see the settings). The
    underlying cursor is kept for the connection's life (a client-side
    object: nothing stays open on the server), so do not close it.
    """
    # What Django's ``connection.cursor()`` does before handing out a cursor.
    conn.close_if_health_check_failed()
    conn.ensure_connection()
    conn.validate_thread_sharing()
    raw = conn.__dict__.get("_refrain_switch_cursor")
    if (
        raw is None
        or raw.closed
        or raw.connection is not conn.connection
        or conn.allow_thread_sharing  # threads on one connection: one cursor each
    ):
        with conn.wrap_database_errors:
            raw = PreparedCursor(conn.connection)
        conn._refrain_switch_cursor = raw
    if conn.queries_logged:
        return conn.make_debug_cursor(raw)
    return conn.make_cursor(raw)
