"""Small SQL helpers shared by the write path and the readers beside it."""

from contextlib import contextmanager

from django.db import DatabaseError, connection


def id_condition(column: str, ids: list[int]) -> tuple[str, list]:
    """``column = ANY(%s)`` with one array parameter on PostgreSQL (a short,
    cacheable statement however many ids), ``IN (…)`` elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


@contextmanager
def try_session_lock(key: int):
    """Yield whether this connection took the lock ``key``; held until the
    block ends, or the connection (a killed worker's) closes.

    PostgreSQL's session-level advisory lock, outside any transaction. Other
    databases yield ``True``: callers must stay correct without the lock,
    which only saves duplicate work (SQLite serialises writers anyway).
    """
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        held = cursor.fetchone()[0]
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
            except DatabaseError:
                pass  # the connection is gone, and the lock with it


def transaction_lock(key: int) -> None:
    """Take the lock ``key`` until the current transaction ends (PostgreSQL's
    transaction-level advisory lock; elsewhere writers are serialised
    already). Call inside ``transaction.atomic``."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


@contextmanager
def one_snapshot():
    """A transaction whose reads all see one snapshot of the database:
    REPEATABLE READ on PostgreSQL (SQLite's transactions already are). Inside
    another transaction (a test's), that one's snapshot is used."""
    from django.db import transaction

    repeatable = connection.vendor == "postgresql" and not connection.in_atomic_block
    with transaction.atomic():
        if repeatable:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield
