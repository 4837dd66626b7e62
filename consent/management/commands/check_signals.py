import sys

from django.core.management.base import BaseCommand

from consent.signals.drift import CHUNK, DETAIL_LIMIT, signals_check


class Command(BaseCommand):
    help = (
        "Render every public signal of every track in process (the public "
        "page's headers and markup, the CAWG assertion, the RSL licence, each "
        "track's answer in robots.txt, tdmrep.json and license.rsl, whose "
        "cached copies are compared with a fresh build, and the tags of the "
        "tagged audio copy where there is one) and compare each with the "
        "stored eligibility, itself compared with the ledger's newest row per "
        "use. Names each mismatch; exits 0 when there is none, 1 otherwise. "
        "Each run is recorded as a CheckRun (kind signals)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk", type=int, default=CHUNK, help="tracks read per query"
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=DETAIL_LIMIT,
            help="how many mismatches to name (all are counted)",
        )

    def handle(self, *args, chunk: int, limit: int, **options) -> None:
        report = signals_check(
            triggered_by="command", chunk=chunk, detail_limit=limit
        ).report
        for line in report.details:
            self.stdout.write(line)
        for note in report.notes:
            self.stdout.write(note)
        self.stdout.write(report.summary())
        if report.problems:
            sys.exit(1)
