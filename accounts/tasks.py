from celery import shared_task

from accounts.models import User
from accounts.services import invitation_send


@shared_task(name="accounts.send_invitations")
def send_invitations(user_ids: list[int]) -> None:
    """Invite artists created by a catalogue import to set a password.

    Takes ids and loads fresh rows; an artist who has set a password meanwhile
    gets nothing, so a redelivered message does not send twice to them.
    """
    for user in User.objects.filter(pk__in=user_ids).order_by("pk"):
        invitation_send(user=user)
