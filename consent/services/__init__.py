"""Every consent write goes through here (ARCHITECTURE.md, "The write path").

A package by concern; callers import the public names from here:

* ``writes``: the shared machinery (locks, ledger rows, errors, results);
* ``decisions`` and ``switch_postgres``: one change (``consent_set``), in
  Python or as one call of the PostgreSQL function;
* ``bulk``: many tracks, inline or as a resumable job;
* ``defaults``: the artist's defaults;
* ``eligibility``: re-evaluation when something other than a decision changes
  (new tracks, licence classes, the catalogue import);
* ``policy_changes``: preview, publish and apply a policy version;
* ``receipt_outbox``: receipts and their e-mails (one per burst of changes,
  daily, or none, as the artist chose: ``receipt_preferences``);
* ``checks``: ``consent_check``, the stored state against the rules, and
  ``ledger_check``, the hash chains; each run recorded as a ``CheckRun``;
* ``anchors``: signed digests of every chain head, their e-mails and their
  verification;
* ``tagged_audio``: the tagged copies of the tracks' audio that downloads
  serve (written by a worker, never in a request).
"""

from consent.services.anchors import (
    AnchorProblem,
    anchor_emails_send_pending,
    anchors_verify,
    ledger_anchor_create,
)
from consent.services.bulk import (
    BulkOutcome,
    bulk_change_start,
    bulk_job_claim,
    bulk_job_give_up,
    bulk_job_run,
    bulk_jobs_resume,
    bulk_scope_count,
    consent_bulk_set_chunk,
)
from consent.services.checks import (
    ConsentCheckOutcome,
    ConsentCheckReport,
    LedgerCheckOutcome,
    consent_check,
    ledger_check,
)
from consent.services.decisions import consent_set
from consent.services.defaults import DefaultsOutcome, defaults_set
from consent.services.eligibility import (
    RefreshOutcome,
    catalog_import,
    eligibility_refresh,
    trackconsent_create_missing,
    tracks_upload,
)
from consent.services.policy_changes import (
    PolicyApplyProgress,
    policy_apply,
    policy_notify_artists,
    policy_preview,
    policy_publish,
    policy_runs_resume,
    policy_versions_unapplied,
)
from consent.services.receipt_outbox import (
    receipt_email_send,
    receipt_for_request,
    receipts_burst_send,
    receipts_send_pending,
)
from consent.services.receipt_preferences import receipt_emails_set
from consent.services.tagged_audio import (
    TaggedDownload,
    tagged_copies_build,
    tagged_copy_build,
    tagged_copy_open,
)
from consent.services.writes import (
    ConsentError,
    ConsentLocked,
    SetResult,
    VersionConflict,
    decision_of,
    new_request_id,
    state_of,
)

__all__ = [
    "AnchorProblem",
    "anchor_emails_send_pending",
    "anchors_verify",
    "ledger_anchor_create",
    "BulkOutcome",
    "ConsentCheckOutcome",
    "ConsentCheckReport",
    "ConsentError",
    "ConsentLocked",
    "DefaultsOutcome",
    "LedgerCheckOutcome",
    "PolicyApplyProgress",
    "RefreshOutcome",
    "SetResult",
    "VersionConflict",
    "bulk_change_start",
    "bulk_job_claim",
    "bulk_job_give_up",
    "bulk_job_run",
    "bulk_jobs_resume",
    "bulk_scope_count",
    "catalog_import",
    "consent_check",
    "consent_bulk_set_chunk",
    "consent_set",
    "decision_of",
    "defaults_set",
    "eligibility_refresh",
    "ledger_check",
    "new_request_id",
    "policy_apply",
    "policy_notify_artists",
    "policy_preview",
    "policy_publish",
    "policy_runs_resume",
    "policy_versions_unapplied",
    "receipt_email_send",
    "receipt_emails_set",
    "receipt_for_request",
    "receipts_burst_send",
    "receipts_send_pending",
    "state_of",
    "TaggedDownload",
    "tagged_copies_build",
    "tagged_copy_build",
    "tagged_copy_open",
    "trackconsent_create_missing",
    "tracks_upload",
]
