"""Permission-scoped reads of accounts."""

from django.db.models import QuerySet

from accounts.models import PersonalAccessToken, User


def tokens_for_user(*, user: User) -> QuerySet[PersonalAccessToken]:
    """The user's tokens that still work, newest first."""
    return PersonalAccessToken.objects.filter(
        user=user, revoked_at__isnull=True
    ).order_by("-created_at", "-id")
