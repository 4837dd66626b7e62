import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import GROUP_AUDITORS, GROUP_POLICY_ADMINS, user_ensure_verified
from catalog.demo import catalog_bulk_generate, demo_isrc, demo_rows
from catalog.models import LicenseClass, Track
from consent.audit import audit_figures_refresh
from consent.demo import trackconsent_bulk_load
from consent.models import ApiKey, Consumer, Decision, Partner, Source
from consent.partners import (
    acknowledgement_record,
    apikey_create,
    eligibility_check,
    lookups_fold,
    partner_create,
)
from consent.propagation import ConsumerError, consumer_create, consumer_move
from consent.services import catalog_import, consent_set
from consent.uses import Use

DEMO_PASSWORD = "refrain-demo"  # noqa: S105 - the demo password, published in the README
DEMO_ACCOUNTS = [
    {"email": "indie@example.com", "display_name": "Juno Vale"},
    {"email": "signed@example.com", "display_name": "The Harbour Lights"},
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


# (track number, use, state) for indie@example.com: a few real decisions so
# the dashboard and the ledger are not empty. Idempotent: consent_set writes
# nothing when the state is already there.
DEMO_DECISIONS = [
    (1, Use.AI_TRAINING, Decision.GRANTED),
    (1, Use.DATA_MINING, Decision.GRANTED),
    (2, Use.GENAI_TRAINING, Decision.DENIED),
    (3, Use.AI_TRAINING, Decision.GRANTED),
    (4, Use.AI_INFERENCE, Decision.GRANTED),
    (5, Use.GENAI_TRAINING, Decision.GRANTED),
    (6, Use.DATA_MINING, Decision.DENIED),
    (8, Use.AI_TRAINING, Decision.GRANTED),
]
DEMO_AI_LAB = "Demo AI lab"


class Command(BaseCommand):
    help = (
        "Create the demo accounts and their tracks (running it again changes "
        "nothing). With --artists and --tracks-per-artist, also generate a large "
        "catalogue in bulk for benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--artists", type=int, default=0)
        parser.add_argument("--tracks-per-artist", type=int, default=0)
        parser.add_argument(
            "--prefix", default="bulk", help="e-mail prefix of generated artists"
        )

    def handle(self, *args, artists: int, tracks_per_artist: int, prefix: str, **opts):
        for account in DEMO_ACCOUNTS:
            user, created = user_ensure_verified(password=DEMO_PASSWORD, **account)
            self.stdout.write(f"{'created' if created else 'exists '} {user.email}")
        rows = [
            *demo_rows(
                email="indie@example.com",
                prefix="IND",
                count=40,
                license_class=LicenseClass.INDEPENDENT,
                labels=[],
            ),
            *demo_rows(
                email="signed@example.com",
                prefix="SGL",
                count=30,
                license_class=LicenseClass.LABEL,
                labels=["Moonlight Records", "Northside Music"],
            ),
            *demo_rows(
                email="signed@example.com",
                prefix="SGI",
                count=5,
                license_class=LicenseClass.INDEPENDENT,
                labels=[],
            ),
        ]
        # Before the decisions, so the demo partner hears of them.
        self._demo_partner()
        report = catalog_import(rows=rows)
        self.stdout.write(
            f"demo tracks: created {report.created}, updated {report.updated}, "
            f"unchanged {report.unchanged}"
        )
        self._demo_decisions()
        self._demo_partner_activity()
        if artists or tracks_per_artist:
            if artists <= 0 or tracks_per_artist <= 0:
                raise CommandError(
                    "--artists and --tracks-per-artist must both be positive"
                )
            try:
                result = catalog_bulk_generate(
                    artists=artists, tracks_per_artist=tracks_per_artist, prefix=prefix
                )
            except ValueError as error:
                raise CommandError(str(error)) from error
            self.stdout.write(
                f"generated {result.artists} artists and {result.tracks} tracks "
                f"in {result.seconds:.1f}s"
            )
            started = time.monotonic()
            trackconsent_bulk_load(artist_ids=result.artist_ids)
            self.stdout.write(
                f"consent rows for every track in {time.monotonic() - started:.1f}s"
            )
        # The transparency pages' figures, so they show numbers at once (beat
        # recomputes them every 5 minutes).
        audit_figures_refresh(triggered_by="seed_demo")

    def _demo_partner(self) -> None:
        """The partner consumer of the demo: the app's own receiver
        (``/demo/webhook/``), so deliveries can be watched happening."""
        name = settings.REFRAIN_DEMO_RECEIVER_CONSUMER
        if not settings.REFRAIN_DEMO_RECEIVER:
            self.stdout.write("demo partner: skipped (REFRAIN_DEMO_RECEIVER is off)")
            return
        url = f"{settings.REFRAIN_SITE_URL.rstrip('/')}/demo/webhook/"
        existing = Consumer.objects.filter(name__iexact=name).first()
        if existing is not None:
            # `make run` on another port: the demo receiver moved with it.
            try:
                moved = consumer_move(consumer=existing, url=url)
            except ConsumerError as error:
                raise CommandError(f"The demo partner cannot move: {error}") from None
            self.stdout.write(
                f"demo partner: {'moved' if moved else 'exists'} {name} -> {url}"
            )
            return
        try:
            consumer_create(
                name=name,
                url=url,
                uses=[Use.GENAI_TRAINING, Use.AI_TRAINING],
                actor=None,
                check_address=True,
            )
        except ConsumerError as error:
            raise CommandError(f"The demo partner cannot be created: {error}") from None
        self.stdout.write(f"demo partner: created {name} -> {url}")

    def _demo_decisions(self) -> None:
        artist = User.objects.get(email="indie@example.com")
        changed = 0
        for number, use, state in DEMO_DECISIONS:
            track = Track.objects.get(isrc=demo_isrc("IND", 24, number))
            result = consent_set(
                track=track, use=use, state=state, actor=artist, source=Source.WEB
            )
            changed += result.changed
        self.stdout.write(f"demo decisions: {changed} changed")

    def _demo_partner_activity(self) -> None:
        """An AI company that checked some of indie@example.com's tracks and
        acknowledged one withdrawal but not another, so the track pages show
        what partners did. Only when the partner is first created (the
        withdrawals are real changes, made once)."""
        if Partner.objects.filter(name=DEMO_AI_LAB).exists():
            self.stdout.write(f"demo AI lab: exists {DEMO_AI_LAB}")
            return
        webhook = Consumer.objects.filter(
            name__iexact=settings.REFRAIN_DEMO_RECEIVER_CONSUMER
        ).first()
        partner = partner_create(name=DEMO_AI_LAB, consumer=webhook)
        _, key = apikey_create(
            name="Demo AI lab key", scope=ApiKey.Scope.PARTNER, partner=partner
        )
        artist = User.objects.get(email="indie@example.com")
        tracks = {
            number: Track.objects.get(isrc=demo_isrc("IND", 24, number))
            for number in range(1, 13)
        }
        for use in (Use.GENAI_TRAINING, Use.AI_TRAINING):
            eligibility_check(
                partner=partner,
                use=use,
                isrcs=[],
                track_ids=[track.public_id for track in tracks.values()],
            )
        # Two withdrawals: track 9's is acknowledged, track 10's is not yet.
        for number, use in ((9, Use.AI_TRAINING), (10, Use.GENAI_TRAINING)):
            for state in (Decision.GRANTED, Decision.DENIED):
                consent_set(
                    track=tracks[number],
                    use=use,
                    state=state,
                    actor=artist,
                    source=Source.WEB,
                )
        tracks[9].refresh_from_db()
        acknowledgement_record(
            partner=partner,
            track=tracks[9].public_id,
            use=Use.AI_TRAINING,
            consent_version=tracks[9].consent_version,
            status="removed",
            dataset="Demo AI lab music v2.1",
        )
        lookups_fold()
        self.stdout.write(
            f"demo AI lab: created {DEMO_AI_LAB}; its partner API key (shown "
            f"once): {key}"
        )
