"""Small SQL helpers shared by the write path and the readers beside it."""

from django.db import connection


def id_condition(column: str, ids: list[int]) -> tuple[str, list]:
    """``column = ANY(%s)`` with one array parameter on PostgreSQL (a short,
    cacheable statement however many ids), ``IN (…)`` elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(ids)]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)
