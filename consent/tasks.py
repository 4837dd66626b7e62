"""Thin Celery tasks: take ids, load fresh state, call one service.

Services import these tasks at module level (as ``<name>_task``) to ring them
after commit; the tasks import the services inside their bodies, so the
dependency at import time points one way.
"""

from celery import shared_task


@shared_task(name="consent.send_pending_receipts")
def send_pending_receipts() -> None:
    """Beat every 10 s (and the doorbell when bursts are off): e-mail each
    artist whose receipts are due, as they chose (one e-mail per burst, a
    daily one, or none); a receipt already done is never sent again."""
    from consent.services import receipts_send_pending

    receipts_send_pending()


@shared_task(name="consent.send_receipt_digests")
def send_receipt_digests() -> None:
    """The sweep above under its former name (the hourly digest of earlier
    releases): kept for messages they queued. Idempotent."""
    from consent.services import receipts_send_pending

    receipts_send_pending()


@shared_task(name="consent.apply_policy")
def apply_policy(version_id: int) -> None:
    """Re-evaluate every track against a policy version; resumes from its
    saved cursor, so a redelivered or duplicated message is harmless."""
    from consent.services import policy_apply

    policy_apply(version_id=version_id)


@shared_task(name="consent.notify_policy_change")
def notify_policy_change(version_id: int) -> None:
    """One summary e-mail per affected artist (at most once each).
    ``policy_apply`` sends them itself before it marks the version applied;
    this task stays for messages queued by earlier releases."""
    from consent.services import policy_notify_artists

    policy_notify_artists(version_id=version_id)


@shared_task(name="consent.resume_policy_runs")
def resume_policy_runs() -> None:
    """Beat: restart re-evaluations whose message was lost (through the
    doorbell: a broker that refuses is logged and tried again next time)."""
    from consent.services import policy_runs_resume

    policy_runs_resume()


@shared_task(name="consent.run_bulk_change")
def run_bulk_change(job_id: int) -> None:
    """Run (or resume) a large bulk change; idempotent per track."""
    from consent.services import bulk_job_run

    bulk_job_run(job_id=job_id)


@shared_task(name="consent.check_consent")
def check_consent(triggered_by: str = "beat") -> None:
    """Beat, nightly: compare the stored consent rows with the rules and
    record a CheckRun. Repairs nothing (a difference made behind the
    services' back needs a person to see why); read-only, safe to run twice."""
    from consent.services import consent_check

    consent_check(triggered_by=triggered_by)


@shared_task(name="consent.verify_ledger")
def verify_ledger(triggered_by: str = "beat") -> None:
    """Beat, nightly: walk every track's hash chain and record a CheckRun;
    read-only, safe to run twice."""
    from consent.services import ledger_check

    ledger_check(triggered_by=triggered_by)


@shared_task(name="consent.resume_bulk_jobs")
def resume_bulk_jobs() -> None:
    """Beat: hand on bulk jobs whose runner died or whose message was lost;
    fail those out of attempts."""
    from consent.services import bulk_jobs_resume

    bulk_jobs_resume()


@shared_task(name="consent.purge_idempotency_records")
def purge_idempotency_records() -> None:
    """Beat, hourly: delete idempotency records older than a day (their key
    may be reused by then); safe to run twice or beside live requests."""
    from consent.idempotency import idempotency_records_purge

    idempotency_records_purge()


@shared_task(name="consent.anchor_ledger")
def anchor_ledger() -> None:
    """Beat, daily: sign a digest of every chain head (a new anchor), then
    e-mail the auditors every anchor not yet sent (this one, and any whose
    doorbell was lost). Twice makes two anchors, both valid."""
    from consent.services import anchor_emails_send_pending, ledger_anchor_create

    ledger_anchor_create()
    anchor_emails_send_pending()


@shared_task(name="consent.send_anchor_emails")
def send_anchor_emails() -> None:
    """E-mail the auditors every anchor not yet sent (at most once each)."""
    from consent.services import anchor_emails_send_pending

    anchor_emails_send_pending()


@shared_task(name="consent.propagate")
def propagate() -> None:
    """The propagation doorbell: fan out recorded changes and wake the
    runner of every consumer with something due. Idempotent."""
    from consent.propagation import propagation_run

    propagation_run()


@shared_task(name="consent.deliver")
def deliver(consumer_id: int) -> None:
    """Deliver what is due to one consumer (one runner per consumer at a
    time; a second message for it returns at once). Idempotent."""
    from consent.propagation import consumer_deliver

    consumer_deliver(consumer_id=consumer_id)


@shared_task(name="consent.sweep_propagation")
def sweep_propagation() -> None:
    """Beat, every few seconds: what a lost doorbell, a killed worker or an
    emptied broker left behind, backfills and replays; safe to run twice."""
    from consent.propagation import propagation_sweep

    propagation_sweep()


@shared_task(name="consent.reconcile_consumers")
def reconcile_consumers(triggered_by: str = "beat") -> None:
    """Beat, nightly: re-queue every track a consumer is behind on."""
    from consent.propagation import consumers_reconcile

    consumers_reconcile(triggered_by=triggered_by)


@shared_task(name="consent.purge_delivery_attempts")
def purge_delivery_attempts() -> None:
    """Beat, daily: the delivery attempt log keeps 30 days."""
    from consent.propagation import delivery_attempts_purge

    delivery_attempts_purge()


@shared_task(name="consent.fold_lookups")
def fold_lookups() -> None:
    """Doorbell and beat: fold logged eligibility checks into daily counts
    per partner and track. Idempotent (a row is deleted as it is folded)."""
    from consent.partners import lookups_fold

    lookups_fold()


@shared_task(name="consent.build_export")
def build_export(snapshot_id: int) -> None:
    """Write and sign one export snapshot (a second message for it finds it
    built, or being built by another worker, and returns)."""
    from consent.partners import export_build

    export_build(snapshot_id=snapshot_id)


@shared_task(name="consent.prune_partner_data")
def prune_partner_data() -> None:
    """Beat, daily: the change feed keeps 35 days, look-ups 13 months, and
    export files only their newest snapshots."""
    from consent.partners import partner_data_prune

    partner_data_prune()


@shared_task(name="consent.tag_audio")
def tag_audio(track_ids: list[int]) -> None:
    """Write the tagged copy of each track's audio for its current consent
    version and remove older copies (rung by the fan-out after each change,
    and by a download that found no copy). Idempotent: a copy already there
    is kept, and a redelivered message finds the work done."""
    from consent.services import tagged_copies_build

    tagged_copies_build(track_ids=track_ids)


@shared_task(name="consent.check_signals")
def check_signals(triggered_by: str = "beat") -> None:
    """Beat, nightly: render every public signal of every track in process,
    compare each with the stored eligibility and the ledger, and record a
    CheckRun. Read-only, safe to run twice."""
    from consent.signals.drift import signals_check

    signals_check(triggered_by=triggered_by)


@shared_task(name="consent.refresh_audit_figures")
def refresh_audit_figures(triggered_by: str = "beat") -> None:
    """Beat, every few minutes: recompute the transparency pages' figures
    from one snapshot of the database; safe to run twice (the second waits
    for nothing and returns)."""
    from consent.audit import audit_figures_refresh

    audit_figures_refresh(triggered_by=triggered_by)
