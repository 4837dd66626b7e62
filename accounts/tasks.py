"""Thin Celery tasks of accounts: take ids, call one service (imported inside
the body, as every app's tasks do: services import tasks, never the reverse)."""

from celery import shared_task


@shared_task(name="accounts.send_invitations")
def send_invitations(user_ids: list[int]) -> None:
    """Invite artists created by a catalogue import to set a password.

    Each invitation is sent at most once (claimed from the account's pending
    flag), so a redelivered message sends nothing twice.
    """
    from accounts.services import invitations_send_pending

    invitations_send_pending(user_ids=user_ids)


@shared_task(name="accounts.send_pending_invitations")
def send_pending_invitations() -> None:
    """Beat: send invitations whose message was lost or refused."""
    from accounts.services import invitations_send_pending

    invitations_send_pending()
