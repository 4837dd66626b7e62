"""SQL the database runs as code, one versioned file per version
(``consent_switch_v2.sql``, ...), each loaded by the migration that installs it.

A released file is never edited: a change is a new version and a migration
that loads it. Each migration pins the SHA-256 of the files it loads, so an
edit in place fails at ``migrate`` (and so in every test run, whose database is
built by migrating) instead of giving databases migrated before and after the
edit two different functions under one migration.

Migrations import this module: keep ``sql_source`` as it is.
"""

import hashlib
import re
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent

_NAME = re.compile(r"[a-z][a-z0-9_]*_v[0-9]+")


class SqlSourceChanged(RuntimeError):
    """A released SQL file differs from the one its migration was made with."""


def sql_source(name: str, *, sha256: str | None = None) -> str:
    """The text of ``consent/sql/<name>.sql`` (newlines read as ``\\n``).

    With ``sha256``, raise ``SqlSourceChanged`` unless the text has that hash.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not the name of a versioned SQL file.")
    text = (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")
    if sha256 is not None:
        found = hashlib.sha256(text.encode()).hexdigest()
        if found != sha256:
            raise SqlSourceChanged(
                f"consent/sql/{name}.sql changed after its migration was made "
                f"(sha256 {found}, pinned {sha256}). Released SQL is never "
                "edited: add the next version and a migration that loads it."
            )
    return text
