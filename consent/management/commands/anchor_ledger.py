from django.core.management.base import BaseCommand

from consent.anchors import anchor_public
from consent.services import anchor_emails_send_pending, ledger_anchor_create
from consent.signing import new_signing_key


class Command(BaseCommand):
    help = (
        "Sign a digest of every chain head of the consent ledger (a Merkle root "
        "over each track's public id, version and head hash) with the site's "
        "Ed25519 key, store it as an anchor (published at /transparency/anchors/) "
        "and e-mail it to the auditors. --new-key prints a fresh key for "
        "REFRAIN_SIGNING_KEY instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--new-key",
            action="store_true",
            help="print a new private key for REFRAIN_SIGNING_KEY and stop",
        )

    def handle(self, *args, new_key: bool, **options) -> None:
        if new_key:
            self.stdout.write(new_signing_key())
            return
        anchor = ledger_anchor_create()
        anchor_emails_send_pending()
        published = anchor_public(anchor)
        self.stdout.write(
            f"anchor {published['id']} at {published['created_at']}: "
            f"{published['tracks']} tracks, {published['rows']} rows, root "
            f"{published['root']}, key {published['key_id']}"
        )
