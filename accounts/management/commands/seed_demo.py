from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.services import GROUP_AUDITORS, GROUP_POLICY_ADMINS, user_ensure_verified

DEMO_PASSWORD = "refrain-demo"
DEMO_ACCOUNTS = [
    {"email": "indie@example.com", "display_name": "Indie Artist"},
    {"email": "signed@example.com", "display_name": "Signed Artist"},
    {
        "email": "auditor@example.com",
        "display_name": "Platform Auditor",
        "is_staff": True,
        "groups": (GROUP_AUDITORS,),
    },
    {
        "email": "admin@example.com",
        "display_name": "Policy Admin",
        "is_staff": True,
        "is_superuser": True,
        "groups": (GROUP_POLICY_ADMINS,),
    },
]


class Command(BaseCommand):
    help = "Create the demo accounts and data. Running it again changes nothing."

    @transaction.atomic
    def handle(self, *args, **options) -> None:
        for account in DEMO_ACCOUNTS:
            user, created = user_ensure_verified(password=DEMO_PASSWORD, **account)
            verb = "created" if created else "exists "
            self.stdout.write(f"{verb} {user.email}")
