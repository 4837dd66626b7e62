"""The receipt's chain heads (``consent.receipts.chain_heads``)."""

from dataclasses import dataclass

from consent.receipts import chain_heads


@dataclass
class _Entry:
    track_id: int
    consent_version: int
    entry_hash: str


@dataclass
class _Track:
    public_id: str


def test_each_track_heads_at_its_newest_row_in_first_seen_order():
    # given a change of two uses on one track and one use on another, the
    # rows not in version order
    entries = [
        _Entry(7, 4, "a" * 64),
        _Entry(3, 9, "b" * 64),
        _Entry(7, 5, "c" * 64),
        _Entry(7, 3, "d" * 64),
    ]
    tracks = {7: _Track("seven"), 3: _Track("three")}

    heads = chain_heads(entries=entries, tracks=tracks)

    assert heads == [
        {"track": "seven", "consent_version": 5, "hash": "c" * 64},
        {"track": "three", "consent_version": 9, "hash": "b" * 64},
    ]


def test_no_rows_no_heads():
    assert chain_heads(entries=[], tracks={}) == []
