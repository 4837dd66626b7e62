"""Every write to accounts goes through here."""

from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import User

GROUP_AUDITORS = "auditors"
GROUP_POLICY_ADMINS = "policy-admins"


@transaction.atomic
def user_update_profile(*, user: User, display_name: str) -> User:
    """Set the artist name. Writes nothing when it is unchanged."""
    display_name = display_name.strip()
    if user.display_name != display_name:
        user.display_name = display_name
        user.save(update_fields=["display_name"])
    return user


@transaction.atomic
def user_ensure_verified(
    *,
    email: str,
    password: str,
    display_name: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
    groups: tuple[str, ...] = (),
) -> tuple[User, bool]:
    """Create an account with a verified primary e-mail, or leave it as it is.

    Idempotent: an existing account is returned unchanged (its password is not
    reset), so running the demo seed twice changes nothing.
    Returns ``(user, created)``.
    """
    user = User.objects.filter(email__iexact=email).first()
    created = user is None
    if created:
        user = User.objects.create_user(
            email=email,
            password=password,
            display_name=display_name,
            is_staff=is_staff,
            is_superuser=is_superuser,
        )
        EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
        for name in groups:
            group, _ = Group.objects.get_or_create(name=name)
            user.groups.add(group)
    return user, created
