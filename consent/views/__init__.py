"""The consent pages, one module per audience; URL confs use these names."""

from consent.views.bulk import bulk_change, bulk_status
from consent.views.downloads import track_download
from consent.views.staff import policy_edit
from consent.views.tracks import (
    consent_settings,
    consent_switch,
    consent_update,
    receipt_download,
    track_detail,
    track_list,
    track_propagation,
    track_upload,
)

__all__ = [
    "bulk_change",
    "bulk_status",
    "consent_settings",
    "consent_switch",
    "consent_update",
    "policy_edit",
    "receipt_download",
    "track_detail",
    "track_download",
    "track_list",
    "track_propagation",
    "track_upload",
]
