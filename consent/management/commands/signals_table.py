from django.core.management.base import BaseCommand

from consent.signals.formats import mapping_table_markdown


class Command(BaseCommand):
    help = (
        "Print the table of the public signals: each of Refrain's uses in each "
        "format (CAWG, AIPREF, Content Signals, RSL, TDMRep), including where a "
        "format cannot express a use, as Markdown. README.md's 'Public signals' "
        "section holds this table (a test keeps them equal)."
    )

    def handle(self, *args, **options) -> None:
        self.stdout.write(mapping_table_markdown())
