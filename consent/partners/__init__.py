"""The partner API's services and selectors: keys, the eligibility check and
its look-up log, the change feed, signed exports and acknowledgements.
The public names are re-exported here."""

from consent.partners.acknowledgements import (
    AcknowledgementRefused,
    PartnerStanding,
    acknowledgement_record,
    acknowledgements_for_track,
    overdue_track_condition,
    track_by_identifier,
    withdrawals_overdue,
    withdrawals_owed,
)
from consent.partners.activity import partner_activity_for_track
from consent.partners.check import CheckAnswer, CheckRefused, eligibility_check
from consent.partners.export import (
    MEDIA_TYPES,
    export_build,
    export_for,
    export_forget,
    export_path,
    exports_prune,
    signature_document,
)
from consent.partners.feed import (
    CursorExpired,
    CursorInvalid,
    cursor_parse,
    feed_page,
    feed_position,
    feed_prune,
    permitted,
)
from consent.partners.keys import (
    KeyError_,
    apikey_authenticate,
    apikey_create,
    apikey_revoke,
    partner_create,
    rate_limit_wait,
)
from consent.partners.lookups import lookups_fold, lookups_prune


def partner_data_prune() -> dict[str, int]:
    """The daily clean-up: feed rows past their keep, old look-up days, old
    export snapshots."""
    return {
        "feed": feed_prune(),
        "lookups": lookups_prune(),
        "exports": exports_prune(),
    }


__all__ = [
    "MEDIA_TYPES",
    "AcknowledgementRefused",
    "CheckAnswer",
    "CheckRefused",
    "CursorExpired",
    "CursorInvalid",
    "KeyError_",
    "PartnerStanding",
    "acknowledgement_record",
    "acknowledgements_for_track",
    "apikey_authenticate",
    "apikey_create",
    "apikey_revoke",
    "cursor_parse",
    "eligibility_check",
    "export_build",
    "export_for",
    "export_forget",
    "export_path",
    "exports_prune",
    "feed_page",
    "feed_position",
    "feed_prune",
    "lookups_fold",
    "lookups_prune",
    "overdue_track_condition",
    "partner_activity_for_track",
    "partner_create",
    "partner_data_prune",
    "permitted",
    "rate_limit_wait",
    "signature_document",
    "track_by_identifier",
    "withdrawals_overdue",
    "withdrawals_owed",
]
