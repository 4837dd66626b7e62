"""Catalogue import throughput (issue 3): a 100,000-row CSV into PostgreSQL.

Goal: 5,000 rows/s or better. Reported with the ratio to a baseline measured
in the same run: a bare bulk insert of the same 100,000 tracks (no parsing,
validation, upsert, accounts or counts).
"""

import csv
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "100000"))
ARTISTS = 2000
DB_NAME = "refrain_bench_import"


def write_csv(path: Path, isrc_prefix: str) -> None:
    rng = random.Random(7)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["isrc", "title", "artist_email", "license_class", "label", "duration_ms"]
        )
        for index in range(ROWS):
            label_row = index % 5 == 0
            writer.writerow(
                [
                    f"{isrc_prefix}-{index // 100000:03d}-25-{index % 100000:05d}",
                    f"Song {rng.randint(1, 10**6)} {index}",
                    f"import-{index % ARTISTS:05d}@example.com",
                    "label" if label_row else "independent",
                    f"Label {index % 40}" if label_row else "",
                    rng.randint(90_000, 400_000),
                ]
            )


def main() -> None:
    common.psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    common.psql(f"CREATE DATABASE {DB_NAME}")
    url = common.BENCH_DATABASE_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"
    common.BENCH_DATABASE_URL = url
    env = common.bench_env()
    common.manage("migrate", "--noinput", env=env)
    common.setup_django()

    from django.db import connection

    from catalog.importer import read_rows, text_stream
    from catalog.models import Track
    from catalog.services import catalog_import

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.csv"
        write_csv(path, "QZ")
        size_mb = path.stat().st_size / 1e6

        # First import: creates 2,000 artists (invited), 40 labels, 100,000 tracks.
        started = time.monotonic()
        with path.open("rb") as binary:
            report = catalog_import(rows=read_rows(text_stream(binary), fmt="csv"))
        first = time.monotonic() - started
        if report.created != ROWS or report.rejected:
            raise RuntimeError(f"first import: {report.as_dict()}")

        # Same file again: everything unchanged, nothing written.
        started = time.monotonic()
        with path.open("rb") as binary:
            again = catalog_import(rows=read_rows(text_stream(binary), fmt="csv"))
        second = time.monotonic() - started
        if again.unchanged != ROWS:
            raise RuntimeError(f"second import: {again.as_dict()}")

    # Baseline: the same number of bare rows, one bulk insert, same database.
    artist_ids = list(
        Track.objects.values_list("artist_id", flat=True).distinct()[:ARTISTS]
    )
    started = time.monotonic()
    Track.objects.bulk_create(
        [
            Track(
                artist_id=artist_ids[index % len(artist_ids)],
                title=f"Bare {index}",
                isrc=f"ZY{index // 100000:03d}25{index % 100000:05d}",
                duration_ms=200_000,
            )
            for index in range(ROWS)
        ],
        batch_size=2000,
    )
    baseline = time.monotonic() - started
    connection.close()
    common.psql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    subprocess.run(
        ["redis-cli", "-u", common.BENCH_REDIS_URL, "FLUSHDB"], capture_output=True
    )

    print(f"import of a {ROWS:,}-row CSV ({size_mb:.1f} MB) into PostgreSQL")
    rows = [
        ["run", "seconds", "rows/s", "x baseline time"],
        [
            "first import (2,000 new artists)",
            f"{first:.1f}",
            f"{ROWS / first:,.0f}",
            f"{first / baseline:.2f}",
        ],
        [
            "same file again (all unchanged)",
            f"{second:.1f}",
            f"{ROWS / second:,.0f}",
            f"{second / baseline:.2f}",
        ],
        [
            "baseline: bare bulk_create",
            f"{baseline:.1f}",
            f"{ROWS / baseline:,.0f}",
            "1.00",
        ],
    ]
    print(common.table(rows))
    goal = ROWS / first >= 5000
    print(f"\ngoal (>= 5,000 rows/s): {'MET' if goal else 'NOT MET'}")


if __name__ == "__main__":
    main()
