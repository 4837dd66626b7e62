"""``manage.py consumers list|add|pause|resume|replay|rotate``: the staff
pages' consumer management, for operators at a shell.

Each action is the service the pages use; a refusal is its message, as a
``CommandError`` (non-zero exit), and changes nothing.
"""

from datetime import date, datetime, time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from consent import propagation
from consent.models import Consumer
from consent.propagation import health

COLUMNS = ("Name", "Kind", "Status", "Backlog", "Dead letters", "Last success")


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--since {text!r} is not a real date: give it as YYYY-MM-DD."
        ) from None
    if day > timezone.localdate():
        raise CommandError("The replay date is in the future.")
    return timezone.make_aware(datetime.combine(day, time.min))


class Command(BaseCommand):
    help = "List and manage the consumers that hear of every consent change."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        actions.add_parser("list", help="Every consumer, its status and backlog.")
        add = actions.add_parser(
            "add", help="Add a partner webhook; prints its secret once."
        )
        add.add_argument("--name", required=True)
        add.add_argument("--url", required=True)
        add.add_argument(
            "--uses", required=True, help="comma-separated, e.g. genai-training"
        )
        for name, words in (
            ("pause", "Stop sending (changes are kept and sent on resume)."),
            ("resume", "Send again, starting with what it missed."),
            ("rotate", "A new secret (printed once); the old one keeps working."),
        ):
            actions.add_parser(name, help=words).add_argument("name")
        replay = actions.add_parser(
            "replay", help="Send again the state of tracks changed since a date."
        )
        replay.add_argument("name")
        replay.add_argument(
            "--since", help="YYYY-MM-DD; without it, every track is sent again"
        )

    def handle(self, *args, action: str, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except propagation.ConsumerError as error:
            raise CommandError(str(error)) from None

    def _consumer(self, name: str) -> Consumer:
        consumer = Consumer.objects.filter(name__iexact=name.strip()).first()
        if consumer is None:
            known = ", ".join(
                Consumer.objects.order_by("name").values_list("name", flat=True)
            )
            raise CommandError(
                f"No consumer named {name!r} (known: {known or 'none'})."
            )
        return consumer

    def _list(self, **options) -> None:
        rows = [
            (
                row.consumer.name,
                row.consumer.kind,
                row.consumer.status,
                str(row.backlog),
                str(row.dead_letters),
                f"{row.last_success_at:%Y-%m-%d %H:%M:%S}"
                if row.last_success_at
                else "never",
            )
            for row in health.consumers_health()
        ]
        widths = [
            max(len(line[i]) for line in [COLUMNS, *rows]) for i in range(len(COLUMNS))
        ]
        for line in [COLUMNS, *rows]:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(line, widths, strict=True)
                ).rstrip()
            )

    def _add(self, *, name: str, url: str, uses: str, **options) -> None:
        made = propagation.consumer_create(
            name=name, url=url, uses=uses, actor=None, check_address=True
        )
        self.stdout.write(f"Added {made.consumer.name} (id {made.consumer.pk}).")
        self.stdout.write(f"Secret (shown only this once): {made.secret}")

    def _pause(self, *, name: str, **options) -> None:
        consumer = propagation.consumer_pause(consumer=self._consumer(name), actor=None)
        self.stdout.write(f"{consumer.name} is paused.")

    def _resume(self, *, name: str, **options) -> None:
        consumer = propagation.consumer_resume(
            consumer=self._consumer(name), actor=None
        )
        self.stdout.write(f"{consumer.name} is active.")

    def _rotate(self, *, name: str, **options) -> None:
        rotated = propagation.consumer_rotate_secret(
            consumer=self._consumer(name), actor=None
        )
        hours = settings.REFRAIN_WEBHOOK_SECRET_GRACE_HOURS
        self.stdout.write(f"New secret (shown only this once): {rotated.secret}")
        self.stdout.write(f"The old secret keeps working for {hours} hours.")

    def _replay(self, *, name: str, since: str | None, **options) -> None:
        consumer = self._consumer(name)
        start = _since(since)
        propagation.consumer_replay(consumer=consumer, since=start, actor=None)
        what = "every track" if start is None else f"tracks changed since {since}"
        self.stdout.write(f"Replay of {what} to {consumer.name} started.")
