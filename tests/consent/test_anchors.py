"""Ledger anchors: the Merkle root (``consent.anchors``), taking, e-mailing and
verifying anchors (``consent.services.anchors``), ``anchor_ledger`` and
``verify_ledger --anchors``."""

import hashlib
import json
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, transaction

from consent import signing
from consent.anchors import (
    EMPTY_ROOT,
    anchor_public,
    anchor_statement,
    leaf_encoding,
    merkle_root,
)
from consent.ledger import chain_hash, entry_encoding
from consent.models import CheckRun, LedgerAnchor, LedgerEntry
from consent.services import (
    anchor_emails_send_pending,
    consent_set,
    ledger_anchor_create,
)
from tests.consent.helpers import append_only_triggers_off
from tests.factories import UserFactory

REFUSED = "ledger anchors are append-only"


def _rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, as written: split at the largest power of two
    smaller than n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    split = 1
    while split * 2 < len(leaves):
        split *= 2
    return hashlib.sha256(
        b"\x01" + _rfc6962_root(leaves[:split]) + _rfc6962_root(leaves[split:])
    ).digest()


@pytest.mark.parametrize("count", range(0, 34))
def test_the_streaming_root_is_rfc_6962s_merkle_tree_hash(count):
    leaves = [f"leaf {number}".encode() for number in range(count)]

    assert merkle_root(leaves) == _rfc6962_root(leaves).hex()


def test_a_leaf_is_compact_json_and_the_empty_tree_hashes_nothing():
    assert leaf_encoding("AbC-123_x", 7, "f" * 64) == (
        b'["AbC-123_x",7,"' + b"f" * 64 + b'"]'
    )
    assert merkle_root([]) == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()


# --- taking an anchor -------------------------------------------------------------


@pytest.fixture
def changed(make_track):
    """Three tracks of one artist: two changed (one twice), one never."""
    artist = UserFactory()
    tracks = [make_track(artist=artist) for _ in range(3)]
    for track, state in [(tracks[0], "granted"), (tracks[0], "denied"),
                         (tracks[1], "granted")]:  # fmt: skip
        consent_set(track=track, use="ai-training", state=state, actor=artist,
                    source="web")  # fmt: skip
    return tracks


def _expected_root() -> str:
    heads = {}
    for entry in LedgerEntry.objects.select_related("track").order_by(
        "track_id", "consent_version"
    ):
        heads[entry.track.public_id] = (entry.consent_version, entry.entry_hash)
    return merkle_root(
        leaf_encoding(public_id, *heads[public_id])
        for public_id in sorted(heads, key=str.encode)
    )


@pytest.mark.django_db
def test_an_anchor_signs_the_root_of_every_chain_head(changed, auditor, task_queue):
    # given the ledger of three tracks, two with a chain
    rows = LedgerEntry.objects.count()
    assert rows == 3

    # when an anchor is taken
    anchor = ledger_anchor_create()

    # then it covers every row so far, one leaf per chain, and its signature
    # verifies with the published key
    stored = LedgerAnchor.objects.get()
    assert stored.pk == anchor.pk
    assert (stored.ledger_through, stored.track_count, stored.row_count) == (
        LedgerEntry.objects.order_by("-pk").values_list("pk", flat=True)[0],
        2,
        3,
    )
    assert stored.root == _expected_root()
    assert stored.key_id == signing.public_jwk()["kid"]
    assert signing.verify(
        anchor_statement(stored), stored.signature, signing.public_jwk()
    )
    assert json.loads(anchor_statement(stored)) == {
        "schema": "refrain-ledger-anchor/1",
        "created_at": anchor_public(stored)["created_at"],
        "ledger_through": stored.ledger_through,
        "tracks": 2,
        "rows": 3,
        "root": stored.root,
        "key_id": stored.key_id,
    }
    # and the auditors' e-mail waits for the commit
    assert stored.emailed_at is None
    assert task_queue.names() == []
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_auditors_get_each_anchor_once(
    changed, auditor, task_queue, django_capture_on_commit_callbacks
):
    # given an auditor and an artist who is not one
    task_queue.run_inline = True

    # when an anchor is taken and its transaction commits
    with django_capture_on_commit_callbacks(execute=True):
        anchor = ledger_anchor_create()

    # then the doorbell e-mailed it to the auditor only, and marked it sent
    assert task_queue.names() == ["send_anchor_emails"]
    assert [message.to for message in mail.outbox] == [[auditor.email]]
    assert anchor.root in mail.outbox[0].body
    assert anchor.signature in mail.outbox[0].body
    assert mail.outbox[0].subject == f"[Refrain] Ledger anchor {anchor.pk}"
    assert LedgerAnchor.objects.get().emailed_at is not None
    # and a second sweep sends nothing again
    assert anchor_emails_send_pending() == 0
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_anchor_table_refuses_updates_and_deletes(changed):
    anchor = ledger_anchor_create()

    def refused(action) -> str:
        with pytest.raises(IntegrityError) as error, transaction.atomic():
            action()
        return str(error.value)

    assert REFUSED in refused(
        lambda: LedgerAnchor.objects.filter(pk=anchor.pk).update(root="0" * 64)
    )
    assert REFUSED in refused(
        lambda: LedgerAnchor.objects.filter(pk=anchor.pk).update(track_count=9)
    )
    assert REFUSED in refused(lambda: LedgerAnchor.objects.all().delete())
    assert LedgerAnchor.objects.get().root == anchor.root
    # only the e-mail flag may be set
    LedgerAnchor.objects.filter(pk=anchor.pk).update(emailed_at=anchor.created_at)
    assert LedgerAnchor.objects.get().emailed_at == anchor.created_at


# --- the commands -----------------------------------------------------------------


def _command(name: str, *args) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_anchor_ledger_takes_and_prints_an_anchor(changed, auditor):
    code, out, err = _command("anchor_ledger")

    anchor = LedgerAnchor.objects.get()
    assert (code, err) == (0, "")
    assert out == (
        f"anchor {anchor.pk} at {anchor_public(anchor)['created_at']}: 2 tracks, "
        f"3 rows, root {anchor.root}, key {anchor.key_id}\n"
    )
    assert [message.to for message in mail.outbox] == [[auditor.email]]


@pytest.mark.django_db
def test_anchor_ledger_new_key_prints_a_key_and_takes_no_anchor():
    code, out, err = _command("anchor_ledger", "--new-key")

    assert code == 0
    assert len(signing.b64url_decode(out.strip())) == 32
    assert LedgerAnchor.objects.count() == 0


@pytest.mark.django_db
def test_verify_ledger_anchors_accepts_anchors_followed_by_new_rows(changed):
    # given an anchor, then more changes (rows past what it covers)
    first = ledger_anchor_create()
    artist = changed[0].artist
    consent_set(track=changed[2], use="ai-training", state="granted",
                actor=artist, source="web")  # fmt: skip
    second = ledger_anchor_create()
    assert (first.row_count, second.row_count) == (3, 4)

    code, out, err = _command("verify_ledger", "--anchors")

    assert (code, err) == (0, "")
    assert out == (
        "tracks checked 3, chains checked 3, rows checked 4, breaks 0, anchors "
        "checked 2, anchor problems 0\n"
    )
    assert CheckRun.objects.get().ok is True


@pytest.mark.django_db
def test_verify_ledger_anchors_finds_a_chain_rewritten_and_rehashed(changed):
    # given an anchor published, then a superuser who rewrites a track's first
    # answer behind the triggers' back and re-hashes its whole chain
    anchor = ledger_anchor_create()
    track = changed[0]
    with append_only_triggers_off() as cursor:
        prev = "0" * 64
        for entry in LedgerEntry.objects.filter(track=track).order_by(
            "consent_version"
        ):
            if entry.consent_version == 1:
                entry.new_state = "denied"
            new_hash = chain_hash(entry_encoding(entry, track.public_id), prev)
            cursor.execute(
                "UPDATE consent_ledgerentry SET new_state = %s, prev_hash = %s, "
                "entry_hash = %s WHERE id = %s",
                [entry.new_state, prev, new_hash, entry.pk],
            )
            prev = new_hash
    assert LedgerEntry.objects.get(track=track, consent_version=1).new_state == (
        "denied"
    )

    # when the ledger is verified without and with its anchors
    plain = _command("verify_ledger")
    code, out, err = _command("verify_ledger", "--anchors")

    # then the chain verifies by itself, but not against the anchor
    assert plain[0] == 0
    assert code == 1
    when = anchor.created_at.strftime("%Y-%m-%d %H:%M:%S")
    assert err == (
        f"ANCHOR anchor {anchor.pk} of {when} UTC: the ledger now gives root "
        f"{_expected_root()}, not {anchor.root}: rows it covered were rewritten, "
        "removed or added after it was published\n"
    )
    assert out.endswith(", breaks 0, anchors checked 1, anchor problems 1\n")
    run = CheckRun.objects.filter(triggered_by="command").order_by("-pk")[0]
    assert (run.problems, run.details) == (1, [err.removeprefix("ANCHOR ").strip()])


@pytest.mark.django_db
def test_verify_ledger_anchors_names_an_anchor_of_another_key(changed, settings):
    # given an anchor signed with a key the site no longer has
    anchor = ledger_anchor_create()
    old_kid = anchor.key_id
    settings.REFRAIN_SIGNING_KEY = signing.new_signing_key()

    code, out, err = _command("verify_ledger", "--anchors")

    assert code == 1
    assert err.endswith(
        f"signed with key {old_kid}, not the site's key "
        f"{signing.public_jwk()['kid']}: its signature cannot be checked\n"
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_an_anchor_committed_for_real_is_mailed_and_the_flush_still_empties_it(
    auditor, task_queue
):
    # given a real commit (no test transaction around it); the flush after
    # this test must get past the anchors' append-only triggers (like every
    # transactional test here, it brings back what migrations wrote, so the
    # tests after it find the shipped policy and content types as they were)
    task_queue.run_inline = True

    anchor = ledger_anchor_create()

    assert task_queue.names() == ["send_anchor_emails"]
    assert [message.to for message in mail.outbox] == [[auditor.email]]
    assert (anchor.track_count, anchor.row_count, anchor.root) == (0, 0, EMPTY_ROOT)
    assert LedgerAnchor.objects.filter(emailed_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_flush_before_this_test_emptied_the_anchors():
    assert LedgerAnchor.objects.count() == 0
