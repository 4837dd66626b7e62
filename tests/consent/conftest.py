"""Shared fixtures of the consent tests: tracks with their consent rows, a
stand-in for the broker, staff with a second factor, a per-test client."""

import uuid

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group
from django.test import Client

import consent.tasks
from accounts.services import GROUP_AUDITORS, GROUP_POLICY_ADMINS
from consent.services import trackconsent_create_missing
from tests.factories import StaffFactory, TrackFactory, UserFactory

CONSENT_TASKS = (
    "send_pending_receipts",
    "apply_policy",
    "notify_policy_change",
    "run_bulk_change",
    "send_anchor_emails",
    "propagate",
    "deliver",
    "sweep_propagation",
)
# Rung after nearly every consent commit: kept apart from ``sent`` so a test
# about receipts or jobs compares only its own tasks.
PROPAGATION_TASKS = frozenset({"propagate", "deliver", "sweep_propagation"})


@pytest.fixture
def artist(db):
    """An artist (a module that needs another kind defines its own)."""
    return UserFactory()


@pytest.fixture
def signed_in(client, artist):
    """The test client, signed in as ``artist``."""
    client.force_login(artist)
    return client


@pytest.fixture
def make_track(db):
    """Create a track the way every real write does, consent rows included.

    ``TrackFactory`` goes through ``catalog.services.track_create``, which
    knows nothing of consent; the upload and import services add the four
    ``TrackConsent`` rows with ``trackconsent_create_missing``, so this does too.
    """

    def make(**kwargs):
        track = TrackFactory(**kwargs)
        trackconsent_create_missing(track_ids=[track.pk])
        track.refresh_from_db()
        return track

    return make


@pytest.fixture
def make_tracks(make_track):
    def make(count: int, **kwargs):
        return [make_track(**kwargs) for _ in range(count)]

    return make


class TaskQueue:
    """Stands in for the broker: records every ``.delay`` of a consent task.

    With ``run_inline`` set, the task also runs at once in this process (its
    real body, as a worker would), which is how e-mails reach ``mail.outbox``.
    The propagation doorbells go to ``doorbells`` instead of ``sent``.
    """

    def __init__(self, originals: dict):
        self.originals = originals
        self.sent: list[tuple[str, tuple]] = []
        self.doorbells: list[tuple[str, tuple]] = []
        self.run_inline = False

    def names(self) -> list[str]:
        return [name for name, _ in self.sent]

    def of(self, name: str) -> list[tuple]:
        return [
            args
            for sent_name, args in [*self.sent, *self.doorbells]
            if sent_name == name
        ]


def _queued_delay(queue: TaskQueue, name: str):
    def delay(*args):
        kept = queue.doorbells if name in PROPAGATION_TASKS else queue.sent
        kept.append((name, args))
        if queue.run_inline:
            queue.originals[name](*args)

    return delay


@pytest.fixture
def task_queue(monkeypatch, settings) -> TaskQueue:
    """Patches each consent task's ``delay`` (the services hold the task
    objects themselves, imported as ``<name>_task``). The propagation
    doorbell is not throttled here, so every commit that records a change
    rings it (the throttle is per process and would depend on timing)."""
    settings.REFRAIN_PROPAGATION_DOORBELL_SECONDS = 0
    tasks = {name: getattr(consent.tasks, name) for name in CONSENT_TASKS}
    queue = TaskQueue({name: task.run for name, task in tasks.items()})
    for name, task in tasks.items():
        monkeypatch.setattr(task, "delay", _queued_delay(queue, name))
    return queue


@pytest.fixture
def client(client_ip):
    """A client with its own address (allauth's per-address limits are shared)."""
    return Client(REMOTE_ADDR=client_ip)


@pytest.fixture(autouse=True)
def _own_cache_space(settings):
    """Each test its own cache keys: search totals are cached per artist id,
    and rolled-back tests hand the next one the same ids on SQLite."""
    cache = dict(settings.CACHES["default"])
    prefix = cache.get("KEY_PREFIX") or "refrain-test"
    cache["KEY_PREFIX"] = f"{prefix}:{uuid.uuid4().hex}"
    settings.CACHES = {**settings.CACHES, "default": cache}


def _staff_in(group_name: str):
    user = StaffFactory()
    group, _ = Group.objects.get_or_create(name=group_name)
    user.groups.add(group)
    # Staff pages ask for a second factor (REFRAIN_STAFF_MFA_REQUIRED).
    TOTP.activate(user, generate_totp_secret())
    return user


@pytest.fixture
def policy_admin(db):
    return _staff_in(GROUP_POLICY_ADMINS)


@pytest.fixture
def auditor(db):
    return _staff_in(GROUP_AUDITORS)


@pytest.fixture
def receiver(settings):
    """A real HTTP endpoint on 127.0.0.1 (``tests/consent/http_receiver.py``);
    private addresses are allowed for it, as in every test of deliveries."""
    from tests.consent.http_receiver import running_receiver

    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    settings.REFRAIN_WEBHOOK_TIMEOUT_SECONDS = 5.0
    with running_receiver() as running:
        yield running
