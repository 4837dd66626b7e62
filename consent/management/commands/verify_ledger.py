import sys

from django.core.management.base import BaseCommand

from consent.services import ledger_check


class Command(BaseCommand):
    help = (
        "Walk every track's hash chain in the consent ledger. Prints tracks "
        "checked, rows checked and breaks; exits 1 on any break, naming the track "
        "and the row. Each run is recorded as a CheckRun."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk", type=int, default=5000, help="rows read per query"
        )

    def handle(self, *args, chunk: int, **options) -> None:
        report = ledger_check(triggered_by="command", chunk=chunk).report
        for problem in report.breaks:
            self.stderr.write(
                f"BREAK track {problem.track_public_id} row {problem.entry_id} "
                f"(version {problem.consent_version}): {problem.reason}"
            )
        self.stdout.write(
            f"tracks checked {report.tracks_checked}, rows checked "
            f"{report.rows_checked}, breaks {len(report.breaks)}"
        )
        if report.breaks:
            sys.exit(1)
