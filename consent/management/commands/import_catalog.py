import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from catalog.importer import detect_format, read_rows, text_stream
from consent.services import catalog_import


class Command(BaseCommand):
    help = (
        "Import tracks from CSV or JSON Lines "
        "(isrc,title,artist_email,license_class,label,duration_ms), upserting by "
        "ISRC. Exits 1 when any row was rejected."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="a .csv or .jsonl file, or - for stdin")
        parser.add_argument(
            "--format",
            choices=["csv", "jsonl"],
            help="override the format guessed from the file name",
        )
        parser.add_argument(
            "--max-errors",
            type=int,
            default=50,
            help="how many rejected rows to list (all are counted)",
        )

    def handle(self, *args, path: str, format: str | None, max_errors: int, **opts):
        fmt = format or detect_format(path)
        started = time.monotonic()
        if path == "-":
            report = catalog_import(
                rows=read_rows(text_stream(sys.stdin.buffer), fmt=fmt)
            )
        else:
            file_path = Path(path)
            if not file_path.is_file():
                raise CommandError(f"{path}: no such file")
            # Bytes that are not UTF-8 reject their row by line, and the
            # other rows go on (catalog.importer).
            with file_path.open("rb") as binary:
                report = catalog_import(rows=read_rows(text_stream(binary), fmt=fmt))
        elapsed = time.monotonic() - started
        for error in report.errors[:max_errors]:
            self.stderr.write(f"line {error.line}: {error.reason}")
        if len(report.errors) > max_errors:
            self.stderr.write(f"… and {len(report.errors) - max_errors} more")
        total = report.created + report.updated + report.unchanged + report.rejected
        self.stdout.write(
            f"created {report.created}, updated {report.updated}, "
            f"unchanged {report.unchanged}, rejected {report.rejected} "
            f"({total} rows in {elapsed:.1f}s, "
            f"{len(report.invited_user_ids)} artist(s) invited)"
        )
        if report.rejected:
            sys.exit(1)
