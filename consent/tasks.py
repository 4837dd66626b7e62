"""Thin Celery tasks: take ids, load fresh state, call one service."""

from celery import shared_task

from consent import services


@shared_task(name="consent.send_pending_receipts")
def send_pending_receipts() -> None:
    """E-mail every receipt not sent yet (the doorbell, and a beat sweep);
    a receipt already sent is never sent again."""
    services.receipts_send_pending()


@shared_task(name="consent.send_receipt_digests")
def send_receipt_digests() -> None:
    """Beat: one e-mail per artist with receipts not yet sent (digest mode)."""
    services.receipts_email_digest()


@shared_task(name="consent.apply_policy")
def apply_policy(version_id: int) -> None:
    """Re-evaluate every track against a policy version; resumes from its
    saved cursor, so a redelivered or duplicated message is harmless."""
    services.policy_apply(version_id=version_id)


@shared_task(name="consent.notify_policy_change")
def notify_policy_change(version_id: int) -> None:
    """One summary e-mail per affected artist (at most once each)."""
    services.policy_notify_artists(version_id=version_id)


@shared_task(name="consent.resume_policy_runs")
def resume_policy_runs() -> None:
    """Beat: restart re-evaluations whose message was lost."""
    for version_id in services.policy_versions_unapplied():
        apply_policy.delay(version_id)


@shared_task(name="consent.run_bulk_change")
def run_bulk_change(job_id: int) -> None:
    """Run (or resume) a large bulk change; idempotent per track."""
    services.bulk_job_run(job_id=job_id)
