import json

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection, transaction
from django.test import override_settings

from catalog.models import Track
from consent.ledger import GENESIS_HASH, chain_hash, entry_encoding, verify_chains
from consent.models import (
    ArtistDefault,
    BulkJob,
    LedgerEntry,
    PolicyNotice,
    PolicyRule,
    PolicyVersion,
    Receipt,
    TrackConsent,
)
from consent.policy import SHIPPED_RULES, Policy, is_eligible, policy_current
from consent.receipts import receipt_payload
from consent.services import (
    ConsentError,
    ConsentLocked,
    VersionConflict,
    bulk_change_start,
    bulk_job_run,
    consent_bulk_set_chunk,
    consent_set,
    defaults_set,
    policy_apply,
    policy_notify_artists,
    policy_preview,
    policy_publish,
    switch_postgres,
    trackconsent_create_missing,
)
from tests.consent.helpers import (
    GENAI,
    INFERENCE,
    MINING,
    TRAINING,
    bulk_job_after_first_chunk,
    track_reclassify,
)
from tests.factories import LabelFactory, StaffFactory, TrackFactory, UserFactory

pytestmark = pytest.mark.django_db

USES = [GENAI, TRAINING, INFERENCE, MINING]


# --- helpers --------------------------------------------------------------------


def consent_of(track, use) -> tuple[str, bool]:
    row = TrackConsent.objects.get(track=track, use=use)
    return row.decision, row.eligible


def consents_of(track) -> dict[str, tuple[str, bool]]:
    return {
        use: (decision, eligible)
        for use, decision, eligible in TrackConsent.objects.filter(
            track=track
        ).values_list("use", "decision", "eligible")
    }


def version_of(track) -> int:
    return Track.objects.values_list("consent_version", flat=True).get(pk=track.pk)


def ledger_of(track) -> list[LedgerEntry]:
    return list(LedgerEntry.objects.filter(track=track).order_by("consent_version"))


def nothing_decided() -> dict[str, tuple[str, bool]]:
    return {use: ("", False) for use in USES}


def list_switch(artist, track, state, **options):
    """A switch as the track list makes it: the track found by its owner and
    public id in the locking statement."""
    return consent_set(
        owner=artist,
        public_id=track.public_id,
        use=TRAINING,
        state=state,
        actor=artist,
        source="web",
        **options,
    )


def assert_hash_is_chained(entry: LedgerEntry, prev_hash: str) -> None:
    assert entry.prev_hash == prev_hash
    assert entry.entry_hash == chain_hash(
        entry_encoding(entry, entry.track.public_id), prev_hash
    )


def publish(rules_changed: dict, *, actor, reason="Test change") -> PolicyVersion:
    return policy_publish(
        rules={**policy_current().rules, **rules_changed}, actor=actor, reason=reason
    )


def publish_and_apply(rules_changed: dict, *, actor) -> PolicyVersion:
    version = publish(rules_changed, actor=actor)
    assert policy_apply(version_id=version.pk).done
    return version


@pytest.fixture
def admin(db):
    return StaffFactory(is_superuser=True)


# --- consent_set ----------------------------------------------------------------


def test_consent_set_writes_ledger_decision_and_receipt_and_mails_after_commit(
    artist, make_track, task_queue, django_capture_on_commit_callbacks
):
    # given an independent track with an ISRC, nothing decided yet
    track = make_track(artist=artist, isrc="QZRFN2500001")
    task_queue.run_inline = True

    # when the artist grants "Other AI training" on the web
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = consent_set(
            track=track,
            use=TRAINING,
            state="granted",
            actor=artist,
            source="web",
            request_id="req-1",
        )
        # then nothing leaves before the commit
        assert task_queue.sent == []
        assert mail.outbox == []

    # the result says what happened
    assert result.changed is True
    assert (result.consent_version, result.decision, result.eligible) == (
        1,
        "granted",
        True,
    )
    assert result.rule == "opt_in"
    # one ledger row with every field, chained to the genesis hash
    entry = LedgerEntry.objects.get()
    assert result.entry == entry
    assert (
        entry.track_id,
        entry.consent_version,
        entry.use,
        entry.old_state,
        entry.new_state,
        entry.old_eligible,
        entry.new_eligible,
        entry.actor_id,
        entry.source,
        entry.policy_version,
        entry.request_id,
        entry.note,
    ) == (track.pk, 1, TRAINING, "default", "granted", False, True, artist.pk,
          "web", 1, "req-1", "")  # fmt: skip
    assert_hash_is_chained(entry, GENESIS_HASH)
    # the version is bumped, on the row and on the caller's instance
    assert version_of(track) == 1
    assert track.consent_version == 1
    # the decision and eligibility are stored; the other uses are untouched
    assert consents_of(track) == {**nothing_decided(), TRAINING: ("granted", True)}
    # one receipt, for this track, naming the ledger hash
    receipt = Receipt.objects.get()
    assert result.receipt == receipt
    assert receipt.artist == artist
    assert list(receipt.tracks.all()) == [track]
    site = django_settings.REFRAIN_SITE_URL.rstrip("/")
    assert receipt.payload == {
        "schema": "refrain-consent-receipt/1",
        "version": "KI-CR-v1.1.0",
        "consentReceiptID": str(receipt.public_id),
        "consentTimestamp": int(receipt.created_at.timestamp()),
        "timestamp": receipt.created_at.isoformat(),
        "collectionMethod": "Switch on the Refrain track page or track list",
        "source": "web",
        "jurisdiction": django_settings.REFRAIN_JURISDICTION,
        "language": "en",
        "piiPrincipalId": str(artist.pk),
        "piiControllers": [
            {
                "piiController": django_settings.REFRAIN_CONTROLLER_NAME,
                "contact": django_settings.REFRAIN_CONTROLLER_CONTACT,
                "piiControllerUrl": site,
            }
        ],
        "policyUrl": f"{site}/policy/",
        "policyVersion": 1,
        "request_id": "req-1",
        "services": [
            {
                "service": "Use of the artist's music for AI",
                "purposes": [
                    {
                        "purpose": "Train other AI (recommendations, tagging, search)",
                        "use": TRAINING,
                        "purposeCategory": ["cawg.ai_training"],
                        "consentType": "EXPLICIT",
                        "state": "granted",
                        "primaryPurpose": True,
                        "termination": "Until the artist changes it in Refrain",
                        "thirdPartyDisclosure": True,
                        "thirdPartyName": "AI partners the platform delivers "
                        "consent to",
                        "tracks": [
                            {
                                "public_id": track.public_id,
                                "isrc": "QZRFN2500001",
                                "consent_version": 1,
                                "eligible": True,
                                "ledger_hash": entry.entry_hash,
                            }
                        ],
                    }
                ],
            }
        ],
        "sensitive": False,
        "ledger": {
            "algorithm": "sha256",
            "hashes": [entry.entry_hash],
            # the track's chain head after the change: this row
            "heads": [
                {
                    "track": track.public_id,
                    "consent_version": 1,
                    "hash": entry.entry_hash,
                }
            ],
        },
    }
    # after the commit: the receipt task was enqueued once and e-mailed it,
    # and the propagation doorbell rang once (PostgreSQL's switch rings both
    # from one callback, the Python path from one each)
    assert len(callbacks) == (1 if connection.vendor == "postgresql" else 2)
    assert task_queue.sent == [("send_pending_receipts", ())]
    assert task_queue.of("propagate") == [()]
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [artist.email]
    assert message.subject == "[Refrain] Your consent receipt"
    assert f"{site}/receipts/{receipt.public_id}.json" in message.body
    [(name, content, mimetype)] = message.attachments
    assert name == f"refrain-receipt-{receipt.public_id}.json"
    assert mimetype == "application/json"
    assert json.loads(content) == receipt.payload
    receipt.refresh_from_db()
    assert receipt.emailed_at is not None


def test_receipt_email_is_sent_once_even_if_the_task_runs_twice(
    artist, make_track, task_queue, django_capture_on_commit_callbacks
):
    from consent.services import receipt_email_send

    track = make_track(artist=artist)
    with django_capture_on_commit_callbacks(execute=True):
        result = consent_set(
            track=track, use=GENAI, state="granted", actor=artist, source="web"
        )

    assert receipt_email_send(receipt_id=result.receipt.pk) is True
    assert receipt_email_send(receipt_id=result.receipt.pk) is False
    assert len(mail.outbox) == 1


def test_each_change_is_chained_to_the_previous_row(artist, make_track):
    track = make_track(artist=artist)

    # when three changes follow each other
    for use, state in [(GENAI, "granted"), (GENAI, "denied"), (MINING, "granted")]:
        consent_set(track=track, use=use, state=state, actor=artist, source="web")

    # then versions are 1, 2, 3, each row chained to the one before
    first, second, third = ledger_of(track)
    assert [e.consent_version for e in (first, second, third)] == [1, 2, 3]
    assert_hash_is_chained(first, GENESIS_HASH)
    assert_hash_is_chained(second, first.entry_hash)
    assert_hash_is_chained(third, second.entry_hash)
    assert (second.old_state, second.new_state) == ("granted", "denied")
    assert (second.old_eligible, second.new_eligible) == (True, False)
    assert version_of(track) == 3
    assert verify_chains().breaks == []
    assert Receipt.objects.count() == 3


@pytest.mark.parametrize(
    "request_id",
    [
        '%s %1$s %% "quoted" \\ back',
        "line\nbreak\ttab\x01 \u00fc \U0001f600 \u2028",
        "0123456789abcdef-consent_version",
    ],
)
def test_a_switch_encodes_any_request_id_exactly(artist, make_track, request_id):
    # given a track without an ISRC, switched by its owner through the list
    # (found by public id), with a request id full of JSON and format()
    # specials (on PostgreSQL the hash and receipt are completed in SQL)
    track = make_track(artist=artist, isrc=None)

    # when it is granted and then denied
    first = list_switch(artist, track, "granted", request_id=request_id)
    list_switch(artist, track, "denied", request_id=request_id)

    # then both rows keep the request id, chain, and verify
    entries = ledger_of(track)
    assert [entry.request_id for entry in entries] == [request_id, request_id]
    assert_hash_is_chained(entries[0], GENESIS_HASH)
    assert_hash_is_chained(entries[1], entries[0].entry_hash)
    # the row the service answers with is the stored row, field for field
    fields = [field.attname for field in LedgerEntry._meta.concrete_fields]
    assert [getattr(first.entry, name) for name in fields] == [
        getattr(entries[0], name) for name in fields
    ]
    assert verify_chains(track_ids=[track.pk]).breaks == []
    # and the stored receipt is exactly the one Python builds for that row
    receipt = Receipt.objects.get(pk=first.receipt.pk)
    assert receipt.payload == receipt_payload(
        receipt=receipt,
        entries=[entries[0]],
        tracks={track.pk: track},
        method="web",
        policy=Policy(number=1, rules={}),
    )
    assert receipt.payload["request_id"] == request_id
    assert receipt.payload["services"][0]["purposes"][0]["tracks"][0]["isrc"] is None
    # its chain head after the change is the new row (on PostgreSQL the
    # skeleton's hash slot fills both places)
    assert receipt.payload["ledger"]["heads"] == [
        {"track": track.public_id, "consent_version": 1,
         "hash": entries[0].entry_hash}
    ]  # fmt: skip
    # the receipt the service answers with reads its payload when asked
    assert first.receipt.payload == receipt.payload


@pytest.mark.postgres
def test_switches_share_one_skeleton_and_each_gets_its_own_values(
    artist, make_track, settings
):
    # given receipt settings holding the digits of the skeleton's own time
    # (a phone number can), which empties the skeleton cache
    epoch = int(switch_postgres._SKELETON_TIME.timestamp())
    settings.REFRAIN_CONTROLLER_CONTACT = f"tel:+1{epoch}"
    settings.REFRAIN_SITE_URL = f"https://{epoch}.example/"
    other = UserFactory()
    tracks = [make_track(artist=artist), make_track(artist=other, isrc=None)]

    # when two artists grant the same use, with their own request ids
    results = [
        list_switch(owner, track, "granted", request_id=f"req-{owner.pk}")
        for owner, track in [(artist, tracks[0]), (other, tracks[1])]
    ]

    # then one skeleton served both
    assert switch_postgres._switch_skeleton.cache_info().currsize == 1
    # and each row and receipt carries its own track, actor, time and ids
    for owner, track, result in zip([artist, other], tracks, results, strict=True):
        (entry,) = ledger_of(track)
        assert (entry.actor_id, entry.request_id) == (owner.pk, f"req-{owner.pk}")
        assert_hash_is_chained(entry, GENESIS_HASH)
        receipt = Receipt.objects.get(pk=result.receipt.pk)
        assert receipt.artist_id == owner.pk
        assert receipt.payload == receipt_payload(
            receipt=receipt,
            entries=[entry],
            tracks={track.pk: track},
            method="web",
            policy=Policy(number=1, rules={}),
        )
        assert receipt.payload["piiControllers"][0]["contact"] == f"tel:+1{epoch}"
    assert verify_chains(track_ids=[t.pk for t in tracks]).breaks == []


def test_a_switch_receipt_follows_changed_receipt_settings(artist, make_track):
    # given a track granted and denied before the controller's settings change
    track = make_track(artist=artist)
    list_switch(artist, track, "granted")
    list_switch(artist, track, "denied")

    # when the site and controller change (a test overrides them) and the
    # track is granted again
    with override_settings(
        REFRAIN_SITE_URL="https://music.example.org",
        REFRAIN_CONTROLLER_NAME="Other Platform Ltd",
    ):
        result = list_switch(artist, track, "granted")

    # then the new receipt names them: no template kept the old ones
    payload = Receipt.objects.get(pk=result.receipt.pk).payload
    assert payload["policyUrl"] == "https://music.example.org/policy/"
    assert payload["piiControllers"][0]["piiController"] == "Other Platform Ltd"


@pytest.mark.parametrize("state", ["granted", "denied", "default"])
def test_setting_the_same_state_twice_writes_nothing_the_second_time(
    artist, make_track, state, task_queue, django_capture_on_commit_callbacks
):
    track = make_track(artist=artist)
    if state != "default":
        consent_set(track=track, use=GENAI, state=state, actor=artist, source="web")
    ledger_before = LedgerEntry.objects.count()
    receipts_before = Receipt.objects.count()
    version_before = version_of(track)

    # when the same state is set again (a double click)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = consent_set(
            track=track, use=GENAI, state=state, actor=artist, source="web"
        )

    # then nothing is written and nothing is sent
    assert result.changed is False
    assert result.entry is None
    assert result.receipt is None
    assert result.consent_version == version_before
    assert LedgerEntry.objects.count() == ledger_before
    assert Receipt.objects.count() == receipts_before
    assert version_of(track) == version_before
    assert callbacks == []
    assert task_queue.sent == []


def test_transitions_without_a_default(artist, make_track):
    track = make_track(artist=artist)
    steps = [
        # state set, expected (decision, eligible), expected (old, new) state
        ("granted", ("granted", True), ("default", "granted")),
        ("default", ("", False), ("granted", "default")),
        ("denied", ("denied", False), ("default", "denied")),
        ("granted", ("granted", True), ("denied", "granted")),
        ("denied", ("denied", False), ("granted", "denied")),
    ]
    for number, (state, stored, states) in enumerate(steps, start=1):
        consent_set(track=track, use=GENAI, state=state, actor=artist, source="web")

        assert consent_of(track, GENAI) == stored
        entry = ledger_of(track)[-1]
        assert entry.consent_version == number
        assert (entry.old_state, entry.new_state) == states
    assert verify_chains().breaks == []


def test_transitions_with_a_default_of_granted(artist, make_track):
    # given the artist's default for genai-training is yes: a new track starts
    # eligible, and the ledger says why
    defaults_set(
        artist=artist, defaults={GENAI: "granted"}, apply_to_existing=True, actor=artist
    )
    track = make_track(artist=artist)
    assert consent_of(track, GENAI) == ("", True)
    [created] = ledger_of(track)
    assert (created.source, created.note, created.actor_id) == (
        "upload",
        "new track: the rules make it eligible",
        None,
    )
    assert (created.old_eligible, created.new_eligible) == (False, True)

    steps = [
        ("denied", ("denied", False), (True, False)),
        ("default", ("", True), (False, True)),
        ("granted", ("granted", True), (True, True)),
        ("default", ("", True), (True, True)),
    ]
    for state, stored, eligibility in steps:
        consent_set(track=track, use=GENAI, state=state, actor=artist, source="web")

        assert consent_of(track, GENAI) == stored
        entry = ledger_of(track)[-1]
        assert (entry.old_eligible, entry.new_eligible) == eligibility
    assert version_of(track) == 5
    assert verify_chains().breaks == []


def test_a_locked_label_track_raises_and_writes_nothing(
    artist, make_track, task_queue, django_capture_on_commit_callbacks
):
    track = make_track(artist=artist, signed=True)

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ConsentLocked),
    ):
        consent_set(track=track, use=GENAI, state="granted", actor=artist, source="web")

    assert LedgerEntry.objects.count() == 0
    assert Receipt.objects.count() == 0
    assert version_of(track) == 0
    assert consents_of(track) == nothing_decided()
    assert callbacks == []
    assert task_queue.sent == []


def test_a_stale_if_version_raises_and_writes_nothing(artist, make_track):
    track = make_track(artist=artist)
    consent_set(track=track, use=GENAI, state="granted", actor=artist, source="api")

    # when a client that saw version 0 sends a change
    with pytest.raises(VersionConflict):
        consent_set(
            track=track,
            use=MINING,
            state="granted",
            actor=artist,
            source="api",
            if_version=0,
        )

    # then nothing is written
    assert LedgerEntry.objects.count() == 1
    assert Receipt.objects.count() == 1
    assert version_of(track) == 1
    assert consent_of(track, MINING) == ("", False)

    # and the current version goes through
    result = consent_set(
        track=track,
        use=MINING,
        state="granted",
        actor=artist,
        source="api",
        if_version=1,
    )
    assert result.consent_version == 2


@pytest.mark.parametrize(
    "use, state", [("face-recognition", "granted"), (GENAI, "maybe"), (GENAI, "")]
)
def test_an_unknown_use_or_state_raises_and_writes_nothing(
    artist, make_track, use, state
):
    track = make_track(artist=artist)

    with pytest.raises(ConsentError):
        consent_set(track=track, use=use, state=state, actor=artist, source="web")

    assert LedgerEntry.objects.count() == 0
    assert Receipt.objects.count() == 0
    assert version_of(track) == 0


# --- bulk -----------------------------------------------------------------------


def test_bulk_chunk_touches_only_the_artists_tracks_and_counts(artist, make_track):
    # given the artist's tracks: two on default, one already granted, one label
    on_default = [make_track(artist=artist), make_track(artist=artist)]
    granted = make_track(artist=artist)
    consent_set(track=granted, use=GENAI, state="granted", actor=artist, source="web")
    label = make_track(artist=artist, signed=True)
    # and another artist's tracks
    other = UserFactory()
    others = [make_track(artist=other), make_track(artist=other)]
    ledger_before = LedgerEntry.objects.count()

    # when a chunk with every id is set to granted
    outcome = consent_bulk_set_chunk(
        artist=artist,
        track_ids=[t.pk for t in [*on_default, granted, label, *others]],
        use=GENAI,
        state="granted",
        actor=artist,
        source="bulk",
        request_id="bulk-1",
    )

    # then only the artist's unlocked, unchanged tracks change
    assert (outcome.changed, outcome.unchanged, outcome.locked) == (2, 1, 1)
    assert {e.track_id for e in outcome.entries} == {t.pk for t in on_default}
    for track in on_default:
        assert consent_of(track, GENAI) == ("granted", True)
        [entry] = ledger_of(track)
        assert (entry.source, entry.request_id, entry.actor_id) == (
            "bulk",
            "bulk-1",
            artist.pk,
        )
    assert LedgerEntry.objects.count() == ledger_before + 2
    assert consent_of(label, GENAI) == ("", False)
    assert version_of(label) == 0
    for track in others:
        assert consents_of(track) == nothing_decided()
        assert version_of(track) == 0
    # the chunk itself writes no receipt (the job does, once)
    assert Receipt.objects.filter(payload__request_id="bulk-1").count() == 0


def test_bulk_change_inline_writes_one_receipt_for_all_changed_tracks(
    artist, make_track, task_queue, django_capture_on_commit_callbacks
):
    changing = [make_track(artist=artist) for _ in range(3)]
    granted = make_track(artist=artist)
    consent_set(track=granted, use=MINING, state="granted", actor=artist, source="web")
    label = make_track(artist=artist, signed=True)
    other_track = make_track(artist=UserFactory())
    receipts_before = set(Receipt.objects.values_list("pk", flat=True))
    task_queue.run_inline = True

    # when the artist grants data mining on selected tracks, one of them not theirs
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_change_start(
            artist=artist,
            use=MINING,
            state="granted",
            actor=artist,
            track_public_ids=[
                t.public_id for t in [*changing, granted, label, other_track]
            ],
        )

    # then it ran in the request and counted every track of theirs
    assert job.status == BulkJob.Status.DONE
    assert (job.total, job.processed) == (5, 5)
    assert (job.changed, job.unchanged, job.locked) == (3, 1, 1)
    assert job.finished_at is not None
    # one receipt covers exactly the changed tracks and their ledger rows
    [receipt] = Receipt.objects.exclude(pk__in=receipts_before)
    assert job.receipt == receipt
    assert set(receipt.tracks.all()) == set(changing)
    entries = LedgerEntry.objects.filter(request_id=job.request_id)
    assert sorted(receipt.payload["ledger"]["hashes"]) == sorted(
        e.entry_hash for e in entries
    )
    # each track's chain head after the change: its one new row here
    assert receipt.payload["ledger"]["heads"] == [
        {"track": e.track.public_id, "consent_version": e.consent_version,
         "hash": e.entry_hash}
        for e in entries.select_related("track").order_by("track_id")
    ]  # fmt: skip
    assert receipt.payload["source"] == "bulk"
    [purpose] = receipt.payload["services"][0]["purposes"]
    assert (purpose["use"], purpose["state"]) == (MINING, "granted")
    assert {t["public_id"] for t in purpose["tracks"]} == {
        t.public_id for t in changing
    }
    # the other artist's track was never touched
    assert consents_of(other_track) == nothing_decided()
    assert version_of(other_track) == 0
    assert consent_of(label, MINING) == ("", False)
    # one e-mail for the bulk's one receipt (the pending sender also sent the
    # earlier single change's receipt, which was still waiting)
    assert task_queue.of("send_pending_receipts") == [()]
    about_bulk = [m for m in mail.outbox if str(receipt.public_id) in m.body]
    assert [m.to for m in about_bulk] == [[artist.email]]
    assert Receipt.objects.filter(emailed_at__isnull=True).count() == 0


def test_bulk_change_refuses_when_none_of_the_tracks_is_the_artists(artist, make_track):
    other_track = make_track(artist=UserFactory())

    with pytest.raises(ConsentError):
        bulk_change_start(
            artist=artist,
            use=MINING,
            state="granted",
            actor=artist,
            track_public_ids=[other_track.public_id],
        )

    assert BulkJob.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


def test_bulk_change_of_all_that_match_a_filter(artist, make_track):
    # given two tracks on default for ai-training and one with a "no"
    on_default = [make_track(artist=artist), make_track(artist=artist)]
    denied = make_track(artist=artist)
    consent_set(track=denied, use=TRAINING, state="denied", actor=artist, source="web")
    other_track = make_track(artist=UserFactory())

    # when "all that match use=ai-training&state=default" are granted
    job = bulk_change_start(
        artist=artist,
        use=TRAINING,
        state="granted",
        actor=artist,
        filters={"use": TRAINING, "state": "default"},
    )

    # then only the matching tracks changed
    assert (job.total, job.changed, job.unchanged, job.locked) == (2, 2, 0, 0)
    for track in on_default:
        assert consent_of(track, TRAINING) == ("granted", True)
    assert consent_of(denied, TRAINING) == ("denied", False)
    assert consents_of(other_track) == nothing_decided()


def test_every_run_of_a_bulk_job_writes_as_whoever_started_it(
    artist, admin, make_track, settings, task_queue
):
    # given a background job started by staff on the artist's behalf, whose
    # first run stops after one chunk
    settings.REFRAIN_BULK_INLINE_LIMIT = 1
    tracks = [make_track(artist=artist) for _ in range(3)]
    job = bulk_change_start(
        artist=artist,
        use=INFERENCE,
        state="granted",
        actor=admin,
        track_public_ids=[t.public_id for t in tracks],
    )
    bulk_job_run(job_id=job.pk, chunk=1)  # runs every chunk of 1

    # then every ledger row of the job, first chunk to last, names the staff
    # member, not the artist the job belongs to
    actors = set(
        LedgerEntry.objects.filter(request_id=job.request_id).values_list(
            "actor_id", flat=True
        )
    )
    assert actors == {admin.pk}
    job.refresh_from_db()
    assert (job.status, job.changed, job.actor_id) == ("done", 3, admin.pk)


def test_a_large_bulk_change_is_queued_after_commit_and_run_by_the_task(
    artist, make_track, settings, task_queue, django_capture_on_commit_callbacks
):
    settings.REFRAIN_BULK_INLINE_LIMIT = 2
    tracks = [make_track(artist=artist) for _ in range(3)]
    label = make_track(artist=artist, signed=True)

    # when four tracks (more than the inline limit) are chosen
    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_change_start(
            artist=artist,
            use=INFERENCE,
            state="granted",
            actor=artist,
            track_public_ids=[t.public_id for t in [*tracks, label]],
        )
        # then the task is only enqueued once the job row commits
        assert task_queue.sent == []

    # the job waits for a worker and nothing has changed yet
    assert task_queue.sent == [("run_bulk_change", (job.pk,))]
    job.refresh_from_db()
    assert job.status == BulkJob.Status.QUEUED
    assert (job.total, job.processed, job.changed, job.cursor) == (4, 0, 0, 0)
    assert job.receipt is None
    assert LedgerEntry.objects.count() == 0
    assert Receipt.objects.count() == 0

    # when the worker runs it in chunks of two
    with django_capture_on_commit_callbacks(execute=True):
        bulk_job_run(job_id=job.pk, chunk=2)

    # then it is done, with one receipt and the result
    job.refresh_from_db()
    assert job.status == BulkJob.Status.DONE
    assert (job.processed, job.changed, job.unchanged, job.locked) == (4, 3, 0, 1)
    assert job.cursor == max(t.pk for t in [*tracks, label])
    receipt = Receipt.objects.get()
    assert job.receipt == receipt
    assert set(receipt.tracks.all()) == set(tracks)
    for track in tracks:
        assert consent_of(track, INFERENCE) == ("granted", True)
    assert task_queue.of("send_pending_receipts") == [()]

    # when the message is delivered a second time, nothing more happens
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        bulk_job_run(job_id=job.pk, chunk=2)

    job.refresh_from_db()
    assert (job.processed, job.changed, job.unchanged, job.locked) == (4, 3, 0, 1)
    assert LedgerEntry.objects.count() == 3
    assert Receipt.objects.count() == 1
    assert callbacks == []


def test_the_bulk_task_runs_the_job_when_the_queue_delivers_it(
    artist, make_track, settings, task_queue, django_capture_on_commit_callbacks
):
    settings.REFRAIN_BULK_INLINE_LIMIT = 1
    tracks = [make_track(artist=artist) for _ in range(2)]
    task_queue.run_inline = True

    with django_capture_on_commit_callbacks(execute=True):
        job = bulk_change_start(
            artist=artist,
            use=GENAI,
            state="granted",
            actor=artist,
            track_public_ids=[t.public_id for t in tracks],
        )

    job.refresh_from_db()
    assert job.status == BulkJob.Status.DONE
    assert job.changed == 2
    assert task_queue.names() == ["run_bulk_change", "send_pending_receipts"]
    assert len(mail.outbox) == 1


def test_a_bulk_job_resumes_from_its_cursor(artist, make_track, settings):
    # given a queued job of which the first chunk was done before a crash
    settings.REFRAIN_BULK_INLINE_LIMIT = 1
    tracks = sorted((make_track(artist=artist) for _ in range(3)), key=lambda t: t.pk)
    job = bulk_job_after_first_chunk(artist=artist, tracks=tracks)

    # when the job is run again
    bulk_job_run(job_id=job.pk)

    # then each track changed once and the counts add up
    job.refresh_from_db()
    assert (job.processed, job.changed, job.unchanged) == (3, 3, 0)
    assert [len(ledger_of(t)) for t in tracks] == [1, 1, 1]
    assert set(job.receipt.tracks.all()) == set(tracks)


# --- defaults -------------------------------------------------------------------


def test_new_default_applied_to_existing_tracks_on_default(artist, make_track):
    # given a track on default, one with an explicit no, and a label track
    on_default = make_track(artist=artist)
    decided = make_track(artist=artist)
    consent_set(track=decided, use=TRAINING, state="denied", actor=artist, source="web")
    label = make_track(artist=artist, signed=True)
    other_track = make_track(artist=UserFactory())

    # when the default for ai-training becomes yes, applied to existing tracks
    outcome = defaults_set(
        artist=artist,
        defaults={TRAINING: "granted"},
        apply_to_existing=True,
        actor=artist,
    )

    # then the track on default follows, logged with a note; the rest do not
    assert outcome.changed_uses == [TRAINING]
    assert (outcome.tracks_following, outcome.tracks_kept) == (1, 0)
    assert ArtistDefault.objects.get(artist=artist, use=TRAINING).decision == "granted"
    assert consents_of(on_default) == {**nothing_decided(), TRAINING: ("", True)}
    [entry] = ledger_of(on_default)
    assert (entry.use, entry.old_state, entry.new_state) == (
        TRAINING,
        "default",
        "default",
    )
    assert (entry.old_eligible, entry.new_eligible) == (False, True)
    assert (entry.source, entry.actor_id, entry.note) == (
        "web",
        artist.pk,
        "follows your new default",
    )
    assert consent_of(decided, TRAINING) == ("denied", False)
    assert len(ledger_of(decided)) == 1
    assert ledger_of(label) == []
    assert consents_of(label) == nothing_decided()
    assert ledger_of(other_track) == []
    assert consents_of(other_track) == nothing_decided()


def test_new_default_not_applied_pins_tracks_to_their_previous_answer(
    artist, make_track
):
    # given a track on default (the answer is no: no default set yet)
    on_default = make_track(artist=artist)

    # when the default becomes yes, but not for existing tracks
    outcome = defaults_set(
        artist=artist,
        defaults={TRAINING: "granted"},
        apply_to_existing=False,
        actor=artist,
    )

    # then the track is pinned to "no" explicitly and stays not eligible
    assert outcome.changed_uses == [TRAINING]
    assert (outcome.tracks_following, outcome.tracks_kept) == (0, 1)
    assert consent_of(on_default, TRAINING) == ("denied", False)
    [entry] = ledger_of(on_default)
    assert (entry.old_state, entry.new_state, entry.source) == (
        "default",
        "denied",
        "web",
    )
    assert (entry.old_eligible, entry.new_eligible) == (False, False)
    assert ArtistDefault.objects.get(artist=artist, use=TRAINING).decision == "granted"

    # and only a track uploaded later takes the new default
    later = make_track(artist=artist)
    assert consent_of(later, TRAINING) == ("", True)
    assert consent_of(on_default, TRAINING) == ("denied", False)


def test_pinning_keeps_an_explicit_previous_default(artist, make_track):
    # given the default was yes, so a track on default is eligible
    defaults_set(
        artist=artist, defaults={GENAI: "granted"}, apply_to_existing=True, actor=artist
    )
    on_default = make_track(artist=artist)
    assert consent_of(on_default, GENAI) == ("", True)

    # when the default becomes no for new tracks only
    outcome = defaults_set(
        artist=artist, defaults={GENAI: "denied"}, apply_to_existing=False, actor=artist
    )

    # then the track keeps its yes, now as its own decision
    assert outcome.tracks_kept == 1
    assert consent_of(on_default, GENAI) == ("granted", True)
    assert consent_of(make_track(artist=artist), GENAI) == ("", False)


def test_pinning_keeps_what_silence_meant_under_an_opt_out_rule(
    artist, admin, make_track
):
    # given independent training is opt-out and the artist never set a
    # default, so a track on default is eligible (silence is a yes)
    publish_and_apply({("independent", TRAINING): "opt_out"}, actor=admin)
    on_default = make_track(artist=artist)
    assert consent_of(on_default, TRAINING) == ("", True)

    # when the default becomes no for new tracks only
    outcome = defaults_set(
        artist=artist,
        defaults={TRAINING: "denied"},
        apply_to_existing=False,
        actor=artist,
    )

    # then the existing track keeps the answer it had: yes, still eligible
    assert outcome.tracks_kept == 1
    assert consent_of(on_default, TRAINING) == ("granted", True)
    [entry] = [e for e in ledger_of(on_default) if e.source == "web"]
    assert (entry.old_eligible, entry.new_eligible) == (True, True)
    # and only a new track takes the new default
    assert consent_of(make_track(artist=artist), TRAINING) == ("", False)


def test_setting_the_same_defaults_again_writes_nothing(artist, make_track):
    track = make_track(artist=artist)
    defaults = {GENAI: "granted", MINING: "denied"}
    defaults_set(artist=artist, defaults=defaults, apply_to_existing=True, actor=artist)
    ledger_before = LedgerEntry.objects.count()

    outcome = defaults_set(
        artist=artist, defaults=defaults, apply_to_existing=False, actor=artist
    )

    assert outcome.changed_uses == []
    assert (outcome.tracks_following, outcome.tracks_kept) == (0, 0)
    assert LedgerEntry.objects.count() == ledger_before
    assert consent_of(track, GENAI) == ("", True)


def test_not_set_defaults_saved_untouched_write_nothing(artist, make_track):
    # given an artist who never set a default (the settings form shows "Not set")
    make_track(artist=artist)

    # when the form is saved untouched, with "keep" chosen
    outcome = defaults_set(
        artist=artist,
        defaults={use: "" for use in (GENAI, TRAINING, INFERENCE, MINING)},
        apply_to_existing=False,
        actor=artist,
    )

    # then nothing is changed, pinned or logged
    assert outcome.changed_uses == []
    assert outcome.receipt is None
    assert ArtistDefault.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


def test_unsetting_a_default_removes_it_and_gives_one_receipt(artist, make_track):
    track = make_track(artist=artist)
    defaults_set(
        artist=artist, defaults={GENAI: "granted"}, apply_to_existing=True, actor=artist
    )
    assert consent_of(track, GENAI) == ("", True)

    outcome = defaults_set(
        artist=artist, defaults={GENAI: ""}, apply_to_existing=True, actor=artist
    )

    assert outcome.changed_uses == [GENAI]
    assert not ArtistDefault.objects.filter(artist=artist, use=GENAI).exists()
    assert consent_of(track, GENAI) == ("", False)
    assert outcome.receipt is not None
    hashes = outcome.receipt.payload["ledger"]["hashes"]
    assert hashes == [
        LedgerEntry.objects.filter(track=track)
        .order_by("-consent_version")[0]
        .entry_hash
    ]


@pytest.mark.parametrize(
    "defaults", [{"face-recognition": "granted"}, {GENAI: "default"}]
)
def test_bad_defaults_raise_and_write_nothing(artist, make_track, defaults):
    make_track(artist=artist)

    with pytest.raises(ConsentError):
        defaults_set(
            artist=artist, defaults=defaults, apply_to_existing=True, actor=artist
        )

    assert ArtistDefault.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


# --- licence class --------------------------------------------------------------


def test_signing_to_a_label_makes_a_granted_use_ineligible(artist, make_track):
    # given an independent track with a yes for genai-training and a no for mining
    track = make_track(artist=artist)
    consent_set(track=track, use=GENAI, state="granted", actor=artist, source="web")
    consent_set(track=track, use=MINING, state="denied", actor=artist, source="web")

    # when the catalogue import says the track is now label-licensed
    changed = track_reclassify(track, license_class="label", label="Northern Records")

    # then it is not eligible any more; the decisions are kept
    assert changed is True
    assert consents_of(track) == {
        **nothing_decided(),
        GENAI: ("granted", False),
        MINING: ("denied", False),
    }
    # one ledger row, for the one use whose eligibility changed
    entries = ledger_of(track)
    assert len(entries) == 3
    entry = entries[-1]
    assert (entry.consent_version, entry.use, entry.old_state, entry.new_state) == (
        3,
        GENAI,
        "granted",
        "granted",
    )
    assert (entry.old_eligible, entry.new_eligible) == (True, False)
    assert (entry.source, entry.actor_id, entry.note) == (
        "import",
        None,
        "licence class or artist changed by the catalogue import",
    )
    # the copies of the class on the consent rows follow
    assert set(
        TrackConsent.objects.filter(track=track).values_list("license_class", flat=True)
    ) == {"label"}
    assert Track.objects.get(pk=track.pk).license_class == "label"
    assert version_of(track) == 3
    assert verify_chains().breaks == []

    # when it goes back to independent, the yes counts again
    assert track_reclassify(track, license_class="independent") is True
    assert consent_of(track, GENAI) == ("granted", True)
    assert version_of(track) == 4


def test_an_unchanged_licence_class_writes_nothing(artist, make_track):
    track = make_track(artist=artist)
    consent_set(track=track, use=GENAI, state="granted", actor=artist, source="web")

    changed = track_reclassify(track, license_class="independent")

    assert changed is False
    assert len(ledger_of(track)) == 1


# --- new tracks -----------------------------------------------------------------


def test_create_missing_gives_a_new_track_four_rows_on_default(artist):
    # given a track written by the catalogue alone
    track = TrackFactory(artist=artist)
    assert TrackConsent.objects.filter(track=track).count() == 0

    created = trackconsent_create_missing(track_ids=[track.pk])

    assert created == 4
    rows = TrackConsent.objects.filter(track=track)
    assert sorted(rows.values_list("use", flat=True)) == sorted(USES)
    assert {(r.decision, r.eligible, r.artist_id, r.license_class) for r in rows} == {
        ("", False, artist.pk, "independent")
    }
    assert LedgerEntry.objects.count() == 0
    # and a second call creates nothing
    assert trackconsent_create_missing(track_ids=[track.pk]) == 0
    assert TrackConsent.objects.filter(track=track).count() == 4


def test_create_missing_under_an_opt_out_rule_starts_eligible(artist, admin):
    publish_and_apply({("independent", INFERENCE): "opt_out"}, actor=admin)
    track = TrackFactory(artist=artist)
    label_track = TrackFactory(artist=artist, signed=True)

    trackconsent_create_missing(track_ids=[track.pk, label_track.pk])

    assert consents_of(track) == {**nothing_decided(), INFERENCE: ("", True)}
    [entry] = ledger_of(track)
    assert (entry.use, entry.source, entry.note, entry.policy_version) == (
        INFERENCE,
        "upload",
        "new track: the rules make it eligible",
        2,
    )
    assert (entry.old_eligible, entry.new_eligible) == (False, True)
    assert consents_of(label_track) == nothing_decided()
    assert ledger_of(label_track) == []


def test_create_missing_with_a_default_of_granted_starts_eligible(artist):
    ArtistDefault.objects.create(artist=artist, use=MINING, decision="granted")
    track = TrackFactory(artist=artist)

    trackconsent_create_missing(track_ids=[track.pk], source="import")

    assert consents_of(track) == {**nothing_decided(), MINING: ("", True)}
    [entry] = ledger_of(track)
    assert entry.source == "import"


# --- policy ---------------------------------------------------------------------


@pytest.fixture
def catalogue(make_track):
    """Two artists' tracks with a mix of answers (see each line)."""
    one, two = UserFactory(), UserFactory()
    tracks = {
        "granted": make_track(artist=one),
        "denied": make_track(artist=one),
        "silent": make_track(artist=one),
        "signed_granted": make_track(artist=one),
        "two_silent": make_track(artist=two),
        "two_silent_b": make_track(artist=two),
    }
    consent_set(
        track=tracks["granted"], use=GENAI, state="granted", actor=one, source="web"
    )
    consent_set(
        track=tracks["granted"], use=TRAINING, state="granted", actor=one, source="web"
    )
    consent_set(
        track=tracks["denied"], use=GENAI, state="denied", actor=one, source="web"
    )
    # a yes given while independent, then the artist signed to a label
    consent_set(
        track=tracks["signed_granted"],
        use=GENAI,
        state="granted",
        actor=one,
        source="web",
    )
    track_reclassify(
        tracks["signed_granted"], license_class="label", label=LabelFactory().name
    )
    # the second artist says yes by default to genai-training
    defaults_set(
        artist=two, defaults={GENAI: "granted"}, apply_to_existing=True, actor=two
    )
    return one, two, tracks


def test_policy_preview_counts_what_would_change(catalogue):
    one, two, tracks = catalogue
    before = LedgerEntry.objects.count()

    preview = policy_preview(
        rules={
            **SHIPPED_RULES,
            # silence becomes yes: "silent" gains; "denied" stays out
            ("independent", GENAI): "opt_out",
            # "granted" loses its ai-training
            ("independent", TRAINING): "prohibited",
            # the signed track's earlier yes counts again
            ("label", GENAI): "opt_in",
        }
    )

    assert preview == {
        ("independent", GENAI): {
            "old": "opt_in",
            "new": "opt_out",
            "gain": 1,
            "lose": 0,
        },
        ("independent", TRAINING): {
            "old": "opt_in",
            "new": "prohibited",
            "gain": 0,
            "lose": 1,
        },
        ("label", GENAI): {"old": "prohibited", "new": "opt_in", "gain": 1, "lose": 0},
    }
    assert policy_preview(rules=dict(SHIPPED_RULES)) == {}
    # a preview writes nothing
    assert PolicyVersion.objects.count() == 1
    assert LedgerEntry.objects.count() == before


@pytest.mark.parametrize(
    "rules, reason",
    [
        ({k: v for k, v in SHIPPED_RULES.items() if k != ("label", MINING)}, "Why"),
        ({**SHIPPED_RULES, ("label", MINING): "sometimes"}, "Why"),
        ({**SHIPPED_RULES, ("major", MINING): "opt_in"}, "Why"),
        ({**SHIPPED_RULES, ("independent", GENAI): "opt_out"}, "   "),
    ],
    ids=["missing-pair", "bad-rule", "unknown-class", "empty-reason"],
)
def test_policy_publish_refuses_bad_input_and_writes_nothing(
    admin, rules, reason, task_queue, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ConsentError),
    ):
        policy_publish(rules=rules, actor=admin, reason=reason)

    assert PolicyVersion.objects.count() == 1
    assert PolicyRule.objects.count() == 8
    assert callbacks == []
    assert task_queue.sent == []


def test_policy_publish_saves_a_version_and_enqueues_apply_after_commit(
    admin, catalogue, task_queue, django_capture_on_commit_callbacks
):
    one, two, tracks = catalogue
    rules = {**SHIPPED_RULES, ("independent", GENAI): "opt_out"}

    with django_capture_on_commit_callbacks(execute=True):
        version = policy_publish(rules=rules, actor=admin, reason="  Opt-out now ")
        assert task_queue.sent == []

    assert task_queue.sent == [("apply_policy", (version.pk,))]
    assert (version.number, version.created_by, version.reason) == (
        2,
        admin,
        "Opt-out now",
    )
    assert version.applied_at is None
    assert policy_current().number == 2
    assert policy_current().rules == rules
    # stored eligibility changes only when the re-evaluation runs
    assert consent_of(tracks["silent"], GENAI) == ("", False)


def _snapshot():
    consents = sorted(
        TrackConsent.objects.values_list("track_id", "use", "decision", "eligible")
    )
    ledger = sorted(
        LedgerEntry.objects.values_list(
            "track_id",
            "consent_version",
            "use",
            "old_state",
            "new_state",
            "old_eligible",
            "new_eligible",
            "actor_id",
            "source",
            "policy_version",
            "request_id",
            "note",
        )
    )
    versions = sorted(Track.objects.values_list("pk", "consent_version"))
    return consents, ledger, versions


def test_policy_apply_in_small_batches_reaches_the_same_end_state(
    admin, catalogue, make_track, task_queue, django_capture_on_commit_callbacks
):
    one, two, tracks = catalogue
    three = UserFactory()  # an artist the change does not affect
    said_no = make_track(artist=three)
    consent_set(track=said_no, use=GENAI, state="denied", actor=three, source="web")
    make_track(artist=three, signed=True)
    version = publish(
        {("independent", GENAI): "opt_out", ("independent", TRAINING): "prohibited"},
        actor=admin,
        reason="Opt-out for generative AI; no other training",
    )
    # the end state of one uninterrupted run, then rolled back
    with transaction.atomic():
        assert policy_apply(version_id=version.pk).done
        expected = _snapshot()
        transaction.set_rollback(True)
    mail.outbox.clear()  # that run's e-mail is not rolled back with it
    ledger_before = LedgerEntry.objects.count()

    # when it runs three tracks at a time, one batch per call
    with django_capture_on_commit_callbacks(execute=True):
        first = policy_apply(version_id=version.pk, batch_size=3, max_batches=1)
    # then the first call did one batch and saved its cursor
    version.refresh_from_db()
    track_ids = sorted(Track.objects.values_list("pk", flat=True))
    assert (first.tracks, first.done) == (3, False)
    assert version.applied_through_track_id == track_ids[2]
    assert version.applied_at is None
    assert task_queue.sent == []
    # and resumed calls finish it
    calls = 1
    with django_capture_on_commit_callbacks(execute=True):
        while not policy_apply(version_id=version.pk, batch_size=3, max_batches=1).done:
            calls += 1
    # eight tracks: batches of 3, 3 and 2, then a call that finds none and marks
    assert len(track_ids) == 8
    assert calls == 3

    # the end state is the same as one run's
    assert _snapshot() == expected
    version.refresh_from_db()
    assert version.applied_at is not None
    assert version.applied_through_track_id == track_ids[-1]
    # every row it wrote says where it came from
    entries = list(LedgerEntry.objects.filter(source="policy"))
    assert {(e.track_id, e.use, e.new_eligible) for e in entries} == {
        (tracks["silent"].pk, GENAI, True),
        (tracks["granted"].pk, TRAINING, False),
    }
    assert {
        (e.request_id, e.actor_id, e.policy_version, e.note, e.old_state == e.new_state)
        for e in entries
    } == {
        (
            "policy-2",
            admin.pk,
            2,
            "policy v2: Opt-out for generative AI; no other training",
            True,
        )
    }
    assert verify_chains().breaks == []
    # the run e-mailed the affected artist's summary once, when it was
    # complete, before marking the version applied (no separate message)
    assert [m.subject for m in mail.outbox] == [
        "[Refrain] The platform's AI policy changed"
    ]
    assert [m.to for m in mail.outbox] == [[one.email]]
    assert PolicyNotice.objects.filter(version=version).count() == 1
    assert task_queue.sent == []
    # a further run does nothing
    again = policy_apply(version_id=version.pk, batch_size=3)
    assert (again.done, again.tracks) == (True, 0)
    assert LedgerEntry.objects.count() == ledger_before + 2


def test_policy_notify_e_mails_each_affected_artist_once(admin, catalogue):
    one, two, tracks = catalogue
    # when a policy change is applied (the run e-mails the summaries)
    version = publish_and_apply(
        {("independent", GENAI): "opt_out", ("independent", TRAINING): "prohibited"},
        actor=admin,
    )

    # then only the first artist's tracks changed (the second's were eligible
    # already), and they got one summary
    [message] = mail.outbox
    assert message.to == [one.email]
    assert message.subject == "[Refrain] The platform's AI policy changed"
    assert "version 2" in message.body
    # per use, how many of the artist's tracks became or stopped being
    # eligible, named, and the rule now in force for them
    assert (
        "  - Generative AI training: 1 of your 4 tracks became eligible: "
        f"“{tracks['silent'].title}”\n"
        "  - Other AI training: 1 of your 4 tracks stopped being eligible: "
        f"“{tracks['granted'].title}”\n"
    ) in message.body
    assert (
        "  - Generative AI training of independent music: allowed unless you "
        "say no\n"
        "  - Other AI training of independent music: never allowed\n"
    ) in message.body
    assert PolicyNotice.objects.filter(version=version).count() == 1

    # when the notify task is delivered as well, nobody gets a second e-mail
    assert policy_notify_artists(version_id=version.pk) == 0
    assert len(mail.outbox) == 1


def test_policy_apply_stops_when_a_newer_version_exists(admin, catalogue):
    older = publish({("independent", GENAI): "opt_out"}, actor=admin)
    publish(
        {("independent", GENAI): "opt_out", ("label", MINING): "opt_out"}, actor=admin
    )
    before = LedgerEntry.objects.count()

    progress = policy_apply(version_id=older.pk)

    # the older run stops at once and is marked done (superseded), so the
    # sweep stops restarting it; the newer version's run covers every track
    assert (progress.done, progress.tracks) == (True, 0)
    older.refresh_from_db()
    assert older.applied_at is not None
    assert LedgerEntry.objects.count() == before


# --- the stored eligibility equals the rules -------------------------------------


def test_stored_eligibility_equals_the_rules_after_the_service_tests(catalogue):
    policy = policy_current()
    for row in TrackConsent.objects.select_related("track"):
        default = (
            ArtistDefault.objects.filter(artist=row.track.artist, use=row.use)
            .values_list("decision", flat=True)
            .first()
        )
        rule = policy.rule(row.track.license_class, row.use)
        assert row.eligible == is_eligible(rule, row.decision, default), row
        assert row.license_class == row.track.license_class
        assert row.artist_id == row.track.artist_id
