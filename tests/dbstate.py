"""A fingerprint of the product's tables, to prove a request changed nothing.

Covers every table of the accounts (with allauth's e-mail addresses and
second factors), catalogue and consent apps, the ledger included: per table
its row count and a digest of every row, so an UPDATE shows as well as an
INSERT or DELETE.
"""

import hashlib

from django.apps import apps
from django.db import connection

APP_LABELS = ("accounts", "account", "mfa", "catalog", "consent")


def product_tables() -> list[str]:
    return sorted(
        model._meta.db_table
        for label in APP_LABELS
        for model in apps.get_app_config(label).get_models()
        if not model._meta.proxy
    )


def database_state() -> dict[str, tuple[int, str]]:
    """{table: (rows, digest of the rows)} for every product table."""
    tables = product_tables()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One round trip: the fuzz suite takes this around every request.
            cursor.execute(
                " UNION ALL ".join(
                    f"SELECT '{table}', count(*), md5(coalesce(string_agg("
                    f"t::text, '|' ORDER BY t::text), '')) FROM {quote(table)} t"
                    for table in tables
                )
            )
            return {table: (count, digest) for table, count, digest in cursor}
        state = {}
        for table in tables:
            cursor.execute(f"SELECT * FROM {quote(table)}")  # noqa: S608 - our names
            rows = sorted(repr(row) for row in cursor.fetchall())
            digest = hashlib.sha256("|".join(rows).encode()).hexdigest()
            state[table] = (len(rows), digest)
        return state
