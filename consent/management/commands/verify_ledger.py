import sys

from django.core.management.base import BaseCommand

from consent.services import ledger_check


class Command(BaseCommand):
    help = (
        "Walk every track's hash chain in the consent ledger and compare each "
        "track's version with its chain's newest row (a chain cut at its end or "
        "deleted whole). With --anchors, also recompute every published anchor "
        "from the ledger and check its signature (a chain rewritten and re-hashed "
        "after an anchor). Prints what was checked; exits 1 on any problem, "
        "naming the track and row or the anchor. Each run is recorded as a "
        "CheckRun."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk", type=int, default=5000, help="rows read per query"
        )
        parser.add_argument(
            "--anchors",
            action="store_true",
            help="also recompute every past anchor (one pass over the ledger each)",
        )

    def handle(self, *args, chunk: int, anchors: bool, **options) -> None:
        outcome = ledger_check(triggered_by="command", chunk=chunk, anchors=anchors)
        report = outcome.report
        for problem in report.breaks:
            self.stderr.write(f"BREAK {problem}")
        for problem in outcome.anchor_problems:
            self.stderr.write(f"ANCHOR {problem}")
        line = (
            f"tracks checked {report.heads_checked}, chains checked "
            f"{report.tracks_checked}, rows checked {report.rows_checked}, "
            f"breaks {len(report.breaks)}"
        )
        if anchors:
            line += (
                f", anchors checked {outcome.anchors_checked}, anchor problems "
                f"{len(outcome.anchor_problems)}"
            )
        self.stdout.write(line)
        if report.breaks or outcome.anchor_problems:
            sys.exit(1)
