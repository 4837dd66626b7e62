"""Stored eligibility always equals what the rules give, and every chain verifies,
whatever mix of changes led there.

The first test replays a seeded random mix on ~30 tracks; the second is the
hypothesis state machine the consent issue asks for. Hypothesis runs many
examples inside one pytest test, and pytest-django resets the database only
per test, so each example runs inside its own savepoint that ``teardown``
rolls back: every example starts from the same empty catalogue. (Mixing
``Machine.TestCase`` with ``hypothesis.extra.django.TestCase`` does not reset
per example either: the state machine's inner ``@given`` function is not a
method of the Django test case, so its ``setup_example`` never runs.)
"""

import random
from collections import Counter

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from catalog.models import Track
from consent.ledger import VerifyReport, verify_chains, verify_heads
from consent.models import ArtistDefault, LedgerEntry, TrackConsent
from consent.policy import is_eligible, policy_current
from consent.services import (
    ConsentError,
    ConsentLocked,
    bulk_change_start,
    consent_set,
    defaults_set,
    policy_apply,
    policy_publish,
    trackconsent_create_missing,
)
from tests.consent.helpers import track_reclassify
from tests.factories import LabelFactory, StaffFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db

USES = ["genai-training", "ai-training", "ai-inference", "data-mining"]
STATES = ["granted", "denied", "default"]
CLASSES = ["independent", "label"]
RULES = ["opt_in", "opt_out", "prohibited"]


def eligibility_mismatches() -> list[tuple]:
    """Every (track, use) whose stored eligibility differs from the rules'."""
    policy = policy_current()
    defaults = {
        (artist_id, use): decision
        for artist_id, use, decision in ArtistDefault.objects.values_list(
            "artist_id", "use", "decision"
        )
    }
    mismatches = []
    for (
        public_id,
        use,
        decision,
        eligible,
        copied_class,
        copied_artist,
        license_class,
        artist_id,
    ) in TrackConsent.objects.values_list(
        "track__public_id",
        "use",
        "decision",
        "eligible",
        "license_class",
        "artist_id",
        "track__license_class",
        "track__artist_id",
    ):
        expected = is_eligible(
            policy.rule(license_class, use), decision, defaults.get((artist_id, use))
        )
        if (eligible, copied_class, copied_artist) != (
            expected,
            license_class,
            artist_id,
        ):
            mismatches.append((public_id, use, decision, eligible, expected))
    return mismatches


def assert_invariants() -> None:
    # every track has its four rows
    rows = Counter(TrackConsent.objects.values_list("track_id", flat=True))
    tracks = dict(Track.objects.values_list("pk", "consent_version"))
    assert rows == {track_id: 4 for track_id in tracks}
    # stored eligibility equals the rules
    assert eligibility_mismatches() == []
    # every chain verifies, and each track's version counts its rows
    report = verify_chains()
    assert report.breaks == []
    ledger_rows = Counter(LedgerEntry.objects.values_list("track_id", flat=True))
    assert {pk: ledger_rows.get(pk, 0) for pk in tracks} == tracks
    # and the head check agrees
    assert verify_heads(report=VerifyReport()).breaks == []


class World:
    """Three artists' catalogues and the operations the tests mix."""

    def __init__(self, *, tracks_per_artist: int):
        self.artists = [UserFactory() for _ in range(3)]
        self.admin = StaffFactory(is_superuser=True)
        self.label = LabelFactory()
        self.track_ids: list[int] = []
        for artist in self.artists:
            for number in range(tracks_per_artist):
                self.upload(artist_index=self.artists.index(artist),
                            signed=number % 4 == 3)  # fmt: skip

    def track(self, index: int) -> Track:
        return Track.objects.get(pk=self.track_ids[index % len(self.track_ids)])

    def upload(self, *, artist_index: int, signed: bool) -> None:
        track = TrackFactory(artist=self.artists[artist_index], signed=signed)
        trackconsent_create_missing(track_ids=[track.pk])
        self.track_ids.append(track.pk)

    def single_change(self, *, track_index: int, use: str, state: str) -> None:
        track = self.track(track_index)
        try:
            consent_set(
                track=track,
                use=use,
                state=state,
                actor=track.artist,
                source="web",
            )
        except ConsentLocked:
            assert policy_current().rule(track.license_class, use) == "prohibited"

    def bulk_change(
        self,
        *,
        artist_index: int,
        use: str,
        state: str,
        track_indices: list[int],
        filter_use: str | None,
    ) -> None:
        artist = self.artists[artist_index]
        others_before = self._others_versions(artist)
        chosen = [self.track(index) for index in track_indices]
        try:
            if filter_use is None:
                bulk_change_start(
                    artist=artist,
                    use=use,
                    state=state,
                    actor=artist,
                    track_public_ids=[t.public_id for t in chosen],
                )
            else:
                bulk_change_start(
                    artist=artist,
                    use=use,
                    state=state,
                    actor=artist,
                    filters={"use": filter_use, "state": "default"},
                )
        except ConsentError:
            if filter_use is None:
                assert all(t.artist_id != artist.pk for t in chosen)
        # a bulk change never touches another artist's tracks
        assert self._others_versions(artist) == others_before

    def default_change(
        self, *, artist_index: int, use: str, decision: str, apply: bool
    ) -> None:
        artist = self.artists[artist_index]
        defaults_set(
            artist=artist,
            defaults={use: decision},
            apply_to_existing=apply,
            actor=artist,
        )

    def policy_change(self, *, license_class: str, use: str, new_rule: str) -> None:
        version = policy_publish(
            rules={**policy_current().rules, (license_class, use): new_rule},
            actor=self.admin,
            reason=f"{license_class} {use}: {new_rule}",
        )
        # the background run, inline, in small resumable batches
        while not policy_apply(version_id=version.pk, batch_size=4).done:
            pass

    def licence_change(self, *, track_index: int, signed: bool) -> None:
        track_reclassify(
            self.track(track_index),
            license_class="label" if signed else "independent",
            label=self.label.name,
        )

    @staticmethod
    def _others_versions(artist) -> dict[int, int]:
        return dict(
            Track.objects.exclude(artist=artist).values_list("pk", "consent_version")
        )


# --- a seeded random mix ------------------------------------------------------------


def test_stored_eligibility_equals_the_rules_after_a_random_mix():
    rng = random.Random(4)
    world = World(tracks_per_artist=10)
    operations = Counter()

    for _ in range(80):
        kind = rng.choices(
            ["single", "bulk", "default", "policy", "licence", "upload"],
            weights=[40, 12, 10, 6, 8, 4],
        )[0]
        operations[kind] += 1
        if kind == "single":
            world.single_change(
                track_index=rng.randrange(100),
                use=rng.choice(USES),
                state=rng.choice(STATES),
            )
        elif kind == "bulk":
            world.bulk_change(
                artist_index=rng.randrange(3),
                use=rng.choice(USES),
                state=rng.choice(STATES),
                track_indices=rng.sample(range(len(world.track_ids)), 8),
                filter_use=rng.choice([None, None, *USES]),
            )
        elif kind == "default":
            world.default_change(
                artist_index=rng.randrange(3),
                use=rng.choice(USES),
                decision=rng.choice(["granted", "denied"]),
                apply=rng.random() < 0.5,
            )
        elif kind == "policy":
            world.policy_change(
                license_class=rng.choice(CLASSES),
                use=rng.choice(USES),
                new_rule=rng.choice(RULES),
            )
        elif kind == "licence":
            world.licence_change(
                track_index=rng.randrange(100), signed=rng.random() < 0.5
            )
        else:
            world.upload(artist_index=rng.randrange(3), signed=rng.random() < 0.2)

    # the mix did something of every kind, and left a real history
    assert set(operations) == {"single", "bulk", "default", "policy", "licence",
                               "upload"}  # fmt: skip
    assert Track.objects.count() == 30 + operations["upload"]
    assert LedgerEntry.objects.count() > 100
    assert TrackConsent.objects.filter(eligible=True).exists()
    assert TrackConsent.objects.filter(eligible=False).exists()
    assert set(LedgerEntry.objects.values_list("source", flat=True)) >= {
        "web",
        "bulk",
        "policy",
        "import",
    }
    assert_invariants()


# --- the state machine -------------------------------------------------------------


class ConsentMachine(RuleBasedStateMachine):
    """Random sequences of every kind of consent change on a small catalogue."""

    def __init__(self):
        super().__init__()
        # A savepoint per example, rolled back in ``teardown``.
        self._example = transaction.atomic()
        self._example.__enter__()
        self.world = World(tracks_per_artist=3)

    def teardown(self):
        transaction.set_rollback(True)
        self._example.__exit__(None, None, None)

    @rule(
        track_index=st.integers(0, 20),
        use=st.sampled_from(USES),
        state=st.sampled_from(STATES),
    )
    def single_change(self, track_index, use, state):
        self.world.single_change(track_index=track_index, use=use, state=state)

    @rule(
        artist_index=st.integers(0, 2),
        use=st.sampled_from(USES),
        state=st.sampled_from(STATES),
        track_indices=st.lists(st.integers(0, 20), min_size=1, max_size=6),
        filter_use=st.none() | st.sampled_from(USES),
    )
    def bulk_change(self, artist_index, use, state, track_indices, filter_use):
        self.world.bulk_change(
            artist_index=artist_index,
            use=use,
            state=state,
            track_indices=track_indices,
            filter_use=filter_use,
        )

    @rule(
        artist_index=st.integers(0, 2),
        use=st.sampled_from(USES),
        decision=st.sampled_from(["granted", "denied"]),
        apply=st.booleans(),
    )
    def default_change(self, artist_index, use, decision, apply):
        self.world.default_change(
            artist_index=artist_index, use=use, decision=decision, apply=apply
        )

    @rule(
        license_class=st.sampled_from(CLASSES),
        use=st.sampled_from(USES),
        new_rule=st.sampled_from(RULES),
    )
    def policy_change(self, license_class, use, new_rule):
        self.world.policy_change(license_class=license_class, use=use,
                                 new_rule=new_rule)  # fmt: skip

    @rule(track_index=st.integers(0, 20), signed=st.booleans())
    def licence_change(self, track_index, signed):
        self.world.licence_change(track_index=track_index, signed=signed)

    @rule(artist_index=st.integers(0, 2), signed=st.booleans())
    def upload(self, artist_index, signed):
        self.world.upload(artist_index=artist_index, signed=signed)

    @invariant()
    def eligibility_equals_the_rules_and_chains_verify(self):
        assert_invariants()


def test_consent_state_machine():
    run_state_machine_as_test(
        ConsentMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=12,
            deadline=None,
            # no example database in the repository; runs are cheap to repeat
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
