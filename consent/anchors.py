"""Ledger anchors: a Merkle root over every chain head, and what is signed.

Leaves, one per track with at least one ledger row among the rows an anchor
covers (``id <= ledger_through``), in ascending byte order of the track's
public id; each leaf is the compact JSON array
``["<track public id>", <consent_version>, "<entry_hash>"]`` of the chain's
newest row (UTF-8, no spaces). The tree is RFC 6962's Merkle Tree Hash
(section 2.1) with SHA-256: a leaf hashes as ``SHA-256(0x00 || leaf)``, a
node as ``SHA-256(0x01 || left || right)``, the empty tree as ``SHA-256("")``;
it is computed streaming, in memory logarithmic in the number of leaves.

The signed message is ``anchor_statement``: compact JSON with sorted keys of
the anchor's time, range, counts, root and key id.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.db import connection, transaction

from catalog.models import Track
from consent.ledger import encode_timestamp
from consent.models import LedgerAnchor, LedgerEntry

SCHEMA = "refrain-ledger-anchor/1"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_encoding(track_public_id: str, consent_version: int, head_hash: str) -> bytes:
    return json.dumps(
        [track_public_id, consent_version, head_hash],
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


class MerkleRoot:
    """RFC 6962's Merkle Tree Hash, fed one leaf at a time: a stack of the
    roots of complete subtrees (at most one per size, so log2(n) of them)."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (leaves below, hash)
        self.leaves = 0

    def add(self, leaf: bytes) -> None:
        size, node = 1, hashlib.sha256(b"\x00" + leaf).digest()
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            size, node = left_size + size, _node(left, node)
        self._stack.append((size, node))
        self.leaves += 1

    def hexdigest(self) -> str:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = _node(left, node)
        return node.hex()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: Iterable[bytes]) -> str:
    tree = MerkleRoot()
    for leaf in leaves:
        tree.add(leaf)
    return tree.hexdigest()


@dataclass(frozen=True)
class Digest:
    """What an anchor covers: its root and counts."""

    ledger_through: int
    track_count: int
    row_count: int
    root: str


# The newest row of each track's chain among those with id <= %s, joined to
# the track's public id, in the leaves' order. PostgreSQL picks each head with
# DISTINCT ON over the (track, version) index and sorts the public ids
# bytewise (COLLATE "C"); SQLite's MAX() takes the other columns from the row
# it picks, and it compares text bytewise by default.
_HEADS_SQL = {
    "postgresql": (
        "SELECT t.public_id, h.consent_version, h.entry_hash FROM ("
        "SELECT DISTINCT ON (track_id) track_id, consent_version, entry_hash "
        "FROM {ledger} WHERE id <= %s ORDER BY track_id, consent_version DESC) h "
        'JOIN {track} t ON t.id = h.track_id ORDER BY t.public_id COLLATE "C"'
    ),
    "sqlite": (
        "SELECT t.public_id, h.consent_version, h.entry_hash FROM ("
        "SELECT track_id, MAX(consent_version) AS consent_version, entry_hash "
        "FROM {ledger} WHERE id <= %s GROUP BY track_id) h "
        "JOIN {track} t ON t.id = h.track_id ORDER BY t.public_id"
    ),
}


def chain_heads(*, ledger_through: int, chunk: int = 10000) -> Iterator[tuple]:
    """(public id, version, hash) of every chain's head among the rows with
    ``id <= ledger_through``, in the leaves' order, streamed in ``chunk``s."""
    sql = _HEADS_SQL[connection.vendor].format(
        ledger=LedgerEntry._meta.db_table, track=Track._meta.db_table
    )
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, [ledger_through])
        while batch := cursor.fetchmany(chunk):
            yield from batch


def ledger_digest(*, ledger_through: int) -> Digest:
    """The Merkle root and counts of the ledger rows with ``id <=
    ledger_through``: the same answer today and at any later time, unless
    those rows were changed."""
    tree = MerkleRoot()
    for public_id, version, head_hash in chain_heads(ledger_through=ledger_through):
        tree.add(leaf_encoding(public_id, version, head_hash))
    rows = LedgerEntry.objects.filter(id__lte=ledger_through).count()
    return Digest(ledger_through, tree.leaves, rows, tree.hexdigest())


def anchor_statement(anchor: LedgerAnchor) -> bytes:
    """The bytes an anchor's signature covers."""
    return json.dumps(
        {
            "schema": SCHEMA,
            "created_at": encode_timestamp(anchor.created_at),
            "ledger_through": anchor.ledger_through,
            "tracks": anchor.track_count,
            "rows": anchor.row_count,
            "root": anchor.root,
            "key_id": anchor.key_id,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()


def anchor_public(anchor: LedgerAnchor) -> dict:
    """An anchor as ``/transparency/anchors/`` publishes it."""
    return {
        "id": anchor.pk,
        "created_at": encode_timestamp(anchor.created_at),
        "ledger_through": anchor.ledger_through,
        "tracks": anchor.track_count,
        "rows": anchor.row_count,
        "root": anchor.root,
        "algorithm": "RFC 6962 Merkle tree, SHA-256",
        "key_id": anchor.key_id,
        "signature": anchor.signature,
        "signed": anchor_statement(anchor).decode(),
    }
