"""The beat schedule: what ``celery beat`` runs, and when (UTC)."""

from celery.schedules import crontab


def beat_schedule(*, sweep_seconds: float) -> dict:
    """Every periodic task; the propagation sweep's interval comes from
    settings."""
    return {
        "sweep-propagation": {
            "task": "consent.sweep_propagation",
            "schedule": sweep_seconds,
        },
        "reconcile-consumers": {
            "task": "consent.reconcile_consumers",
            "schedule": crontab(hour=2, minute=45),
        },
        "purge-delivery-attempts": {
            "task": "consent.purge_delivery_attempts",
            "schedule": crontab(hour=4, minute=35),
        },
        "resume-bulk-jobs": {
            "task": "consent.resume_bulk_jobs",
            "schedule": 15.0,
        },
        "resume-policy-runs": {
            "task": "consent.resume_policy_runs",
            "schedule": 60.0,
        },
        # Receipt e-mails: each artist's bursts once they are over, and the
        # daily e-mails once their hour has passed (one sweep for both).
        "pending-receipts": {
            "task": "consent.send_pending_receipts",
            "schedule": 10.0,
        },
        # Nightly consistency checks, each recorded as a CheckRun (UTC).
        "check-consent": {
            "task": "consent.check_consent",
            "schedule": crontab(hour=3, minute=15),
        },
        "check-signals": {
            "task": "consent.check_signals",
            "schedule": crontab(hour=3, minute=30),
        },
        "verify-ledger": {
            "task": "consent.verify_ledger",
            "schedule": crontab(hour=3, minute=45),
        },
        # A signed digest of every chain head, e-mailed to the auditors.
        "anchor-ledger": {
            "task": "consent.anchor_ledger",
            "schedule": crontab(hour=4, minute=5),
        },
        "pending-invitations": {
            "task": "accounts.send_pending_invitations",
            "schedule": 60.0,
        },
        "purge-idempotency-records": {
            "task": "consent.purge_idempotency_records",
            "schedule": 60 * 60.0,
        },
        # The transparency pages' figures, precomputed (consent.audit).
        "refresh-audit-figures": {
            "task": "consent.refresh_audit_figures",
            "schedule": 300.0,
        },
        "fold-partner-lookups": {"task": "consent.fold_lookups", "schedule": 30.0},
        "prune-partner-data": {
            "task": "consent.prune_partner_data",
            "schedule": crontab(hour=4, minute=50),
        },
    }
