"""``manage.py apikeys create|list|revoke``: the staff page's API keys, for
operators at a shell.

``create --name N --scope partner|catalog [--partner P] [--rate-limit R]``
prints the key once (a partner key's partner is ``--partner``, or the partner
named N, created if there is none). ``revoke PREFIX`` refuses the key from
the next request on. A refusal is a ``CommandError`` and changes nothing.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from consent.models import ApiKey, Consumer, Partner
from consent.partners import KeyError_, apikey_create, apikey_revoke, partner_create

COLUMNS = ("Prefix", "Name", "Scope", "Partner", "Per minute", "Last used", "Status")


class Command(BaseCommand):
    help = "Create, list and revoke API keys for partners and the catalogue feed."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a key; prints it once.")
        create.add_argument("--name", required=True)
        create.add_argument("--scope", required=True, choices=ApiKey.Scope.values)
        create.add_argument(
            "--partner",
            help="the partner a partner key belongs to (default: --name; "
            "created if it does not exist)",
        )
        create.add_argument(
            "--consumer",
            help="when the partner is created: its webhook consumer, by name",
        )
        create.add_argument("--rate-limit", type=int, help="requests per minute")
        actions.add_parser("list", help="Every key, newest first.")
        revoke = actions.add_parser("revoke", help="Revoke a key by its prefix.")
        revoke.add_argument("prefix")

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except KeyError_ as error:
            raise CommandError(str(error)) from None

    @transaction.atomic
    def _create(self, *, name, scope, partner, consumer, rate_limit, **_):
        owner = None
        if scope == ApiKey.Scope.PARTNER:
            partner_name = (partner or name).strip()
            owner = Partner.objects.filter(name__iexact=partner_name).first()
            if owner is None:
                webhook = None
                if consumer:
                    webhook = Consumer.objects.filter(name=consumer).first()
                    if webhook is None:
                        raise CommandError(f"No consumer is named “{consumer}”.")
                owner = partner_create(name=partner_name, consumer=webhook)
                self.stdout.write(f"Created the partner “{owner.name}”.")
        elif partner:
            raise CommandError("A catalogue key belongs to no partner.")
        key, plaintext = apikey_create(
            name=name, scope=scope, partner=owner, rate_limit=rate_limit
        )
        self.stdout.write(
            f"Created the {key.scope} key “{key.name}” ({key.prefix}…), "
            f"{key.rate_limit} requests a minute. It is shown only now:"
        )
        self.stdout.write(plaintext)

    def _list(self, **_):
        rows = [COLUMNS]
        for key in ApiKey.objects.select_related("partner"):
            rows.append(
                (
                    key.prefix,
                    key.name,
                    key.scope,
                    key.partner.name if key.partner else "—",
                    str(key.rate_limit),
                    key.last_used_at.strftime("%Y-%m-%d %H:%M")
                    if key.last_used_at
                    else "never",
                    "revoked" if key.revoked_at else "active",
                )
            )
        if len(rows) == 1:
            self.stdout.write("No API keys yet.")
            return
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                ).rstrip()
            )

    def _revoke(self, *, prefix, **_):
        try:
            key = apikey_revoke(prefix=prefix)
        except ApiKey.DoesNotExist:
            raise CommandError(f"No key starts with “{prefix}”.") from None
        self.stdout.write(f"Revoked {key.prefix}… ({key.name}).")
