import sys

from django.core.management.base import BaseCommand

from consent.services import consent_check
from consent.services.checks import DETAIL_LIMIT


class Command(BaseCommand):
    help = (
        "Compare every track's stored consent rows with the catalogue and the "
        "current policy: one row per use, the copied artist and licence class, "
        "the stored eligibility. Names each difference. Exits 0 when there is "
        "none, 1 when any is left, 2 when every one found was repaired: any "
        "difference is a non-zero exit, since something wrote behind the services' "
        "back. --repair puts them right through the services (ledger source "
        "admin) and checks again. Each run is recorded as a CheckRun."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--repair",
            action="store_true",
            help="fix what is found through the services, then check again",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=DETAIL_LIMIT,
            help="how many differences to name (all are counted)",
        )

    def handle(self, *args, repair: bool, limit: int, **options) -> None:
        outcome = consent_check(
            triggered_by="command", repair=repair, detail_limit=limit
        )
        found = outcome.found
        for line in found.differences:
            self.stdout.write(line)
        if found.skipped():
            self.stdout.write(found.skipped())
        self.stdout.write(found.summary())
        if outcome.after is not None:
            self.stdout.write(
                f"repaired {outcome.repaired_tracks} tracks through the services "
                "(ledger source admin); checking again"
            )
            for line in outcome.after.differences:
                self.stdout.write(line)
            self.stdout.write(outcome.after.summary())
        if outcome.remaining:
            sys.exit(1)
        if found.problems:
            sys.exit(2)
