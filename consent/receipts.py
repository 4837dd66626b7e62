"""Consent receipts: JSON after the Kantara Consent Receipt (v1.1) and the
ISO/IEC TS 27560 consent record, one per change or bulk change by an artist."""

from django.conf import settings

from consent.models import LedgerEntry, Receipt
from consent.signals.formats import MAPPING
from consent.uses import USES

SCHEMA = "refrain-consent-receipt/1"
KANTARA_VERSION = "KI-CR-v1.1.0"
COLLECTION_METHODS = {
    "web": "Switch on the Refrain track page or track list",
    "bulk": "Bulk change on the Refrain track list",
    "api": "Refrain API, on the artist's behalf",
    "admin": "Changed by platform staff",
    "policy": "Platform policy change",
    "import": "Catalogue import",
    "upload": "Upload",
    "defaults": "Change of defaults on the Refrain settings page",
}


def receipt_times(created_at) -> dict:
    """The receipt's two timestamps (Kantara's epoch seconds and ISO 8601)."""
    return {
        "consentTimestamp": int(created_at.timestamp()),
        "timestamp": created_at.isoformat(),
    }


def receipt_payload(
    *,
    receipt: Receipt,
    entries: list[LedgerEntry],
    tracks: dict,
    method: str,
    policy,
    extra: dict | None = None,
) -> dict:
    """Build the receipt for these ledger rows (all of one artist).

    ``tracks`` maps track ids to objects with ``public_id`` and ``isrc``;
    ``extra`` adds members after the standard ones (a change of defaults
    records the defaults it changed: ``defaults_receipt_extra``).
    """
    purposes: dict[tuple[str, str], dict] = {}
    for entry in entries:
        info = USES[entry.use]
        key = (entry.use, entry.new_state)
        purpose = purposes.setdefault(
            key,
            {
                "purpose": info.description,
                "use": entry.use,
                "purposeCategory": [MAPPING[entry.use].cawg],
                "consentType": "EXPLICIT",
                "state": entry.new_state,
                "primaryPurpose": True,
                "termination": "Until the artist changes it in Refrain",
                "thirdPartyDisclosure": True,
                "thirdPartyName": "AI partners the platform delivers consent to",
                "tracks": [],
            },
        )
        purpose["tracks"].append(
            {
                "public_id": tracks[entry.track_id].public_id,
                "isrc": getattr(tracks[entry.track_id], "isrc", None) or None,
                "consent_version": entry.consent_version,
                "eligible": entry.new_eligible,
                "ledger_hash": entry.entry_hash,
            }
        )
    site = settings.REFRAIN_SITE_URL.rstrip("/")
    payload = {
        "schema": SCHEMA,
        "version": KANTARA_VERSION,
        "consentReceiptID": str(receipt.public_id),
        **receipt_times(receipt.created_at),
        "collectionMethod": COLLECTION_METHODS.get(method, method),
        "source": method,
        "jurisdiction": settings.REFRAIN_JURISDICTION,
        "language": "en",
        "piiPrincipalId": str(receipt.artist_id),
        "piiControllers": [
            {
                "piiController": settings.REFRAIN_CONTROLLER_NAME,
                "contact": settings.REFRAIN_CONTROLLER_CONTACT,
                "piiControllerUrl": site,
            }
        ],
        "policyUrl": f"{site}/policy/",
        "policyVersion": policy.number,
        "request_id": entries[0].request_id if entries else "",
        "services": [
            {
                "service": "Use of the artist's music for AI",
                "purposes": list(purposes.values()),
            }
        ],
        "sensitive": False,
        "ledger": {
            "algorithm": "sha256",
            "hashes": [entry.entry_hash for entry in entries],
            "heads": chain_heads(entries=entries, tracks=tracks),
        },
    }
    return {**payload, **(extra or {})}


def defaults_receipt_extra(
    *,
    previous: dict[str, str | None],
    defaults: dict[str, str],
    uses: list[str],
    applied_to_existing: bool,
) -> dict:
    """The receipt member of a change of defaults: each use whose default
    changed, from what (``None``: not set, which is No) to what, and whether
    the tracks on default followed it (else they kept their answer)."""
    return {
        "defaults": {
            "applied_to_existing": applied_to_existing,
            "changes": [
                {
                    "use": use,
                    "purpose": USES[use].description,
                    "old": previous.get(use) or None,
                    "new": defaults[use] or None,
                }
                for use in uses
            ],
        }
    }


def chain_heads(*, entries: list[LedgerEntry], tracks: dict) -> list[dict]:
    """Each track's chain head after the change: its newest row among
    ``entries`` (a change locks its tracks, so nothing is newer), in the order
    the tracks first appear. Heads are what ledger anchors sign
    (``consent.anchors``)."""
    newest: dict[int, LedgerEntry] = {}
    for entry in entries:
        known = newest.get(entry.track_id)
        if known is None or entry.consent_version > known.consent_version:
            newest[entry.track_id] = entry
    return [
        {
            "track": tracks[track_id].public_id,
            "consent_version": entry.consent_version,
            "hash": entry.entry_hash,
        }
        for track_id, entry in newest.items()
    ]
