"""Every write to accounts goes through here."""

import hashlib
import secrets
from datetime import timedelta

from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress
from allauth.account.utils import user_pk_to_url_str
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.mail import send_mail
from django.db import transaction
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.models import PersonalAccessToken, User

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


def users_get_or_create_invited(
    *, emails: set[str]
) -> tuple[dict[str, User], list[int]]:
    """Find accounts by e-mail (case-insensitive), creating the missing ones.

    New accounts have an unusable password and a verified primary address
    (the platform's catalogue vouches for it); they are invited by e-mail to
    set a password. Call inside the caller's transaction and send the
    invitations after commit. Returns ``({lowercased email: user}, new ids)``.
    Safe against a concurrent import creating the same address.
    """
    wanted = {email.strip().lower() for email in emails if email.strip()}
    found = _users_by_lower_email(wanted)
    missing = sorted(wanted - found.keys())
    new_ids: list[int] = []
    if missing:
        new_users = [User(email=email, invitation_pending=True) for email in missing]
        for new_user in new_users:
            new_user.set_unusable_password()
        User.objects.bulk_create(new_users, ignore_conflicts=True, batch_size=1000)
        created = {
            user.email.lower(): user
            for user in User.objects.filter(
                email__in=missing, emailaddress__isnull=True
            )
        }
        EmailAddress.objects.bulk_create(
            [
                EmailAddress(user=user, email=user.email, verified=True, primary=True)
                for user in created.values()
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        new_ids = [user.pk for user in created.values()]
        found.update(created)
        for email in wanted - found.keys():  # lost a race to another import
            found[email] = User.objects.get(email__iexact=email)
    return found, new_ids


def _users_by_lower_email(emails: set[str]) -> dict[str, User]:
    """One query through the case-insensitive unique index on the e-mail."""
    found: dict[str, User] = {}
    ordered = sorted(emails)
    for start in range(0, len(ordered), 5000):
        chunk = ordered[start : start + 5000]
        for user in User.objects.annotate(email_lower=Lower("email")).filter(
            email_lower__in=chunk
        ):
            found[user.email_lower] = user
    return found


def invitation_send(*, user_id: int) -> bool:
    """E-mail a set-your-password link to an invited artist, once.

    Claims the pending invitation under the account's row lock and clears it
    before the e-mail leaves (like receipts: at most once, so a redelivered
    message or a concurrent sweep never sends twice). Sends nothing to an
    account that has set a password meanwhile. Returns whether it sent.
    """
    with transaction.atomic():
        user = (
            User.objects.select_for_update()
            .filter(pk=user_id, invitation_pending=True)
            .first()
        )
        if user is None:
            return False
        user.invitation_pending = False
        user.save(update_fields=["invitation_pending"])
    if user.has_usable_password() or not user.is_active:
        return False
    path = reverse(
        "account_reset_password_from_key",
        kwargs={
            "uidb36": user_pk_to_url_str(user),
            "key": default_token_generator.make_token(user),
        },
    )
    context = {"user": user, "url": settings.REFRAIN_SITE_URL.rstrip("/") + path}
    send_mail(
        subject=settings.ACCOUNT_EMAIL_SUBJECT_PREFIX
        + "Your tracks are on Refrain: you decide how AI may use them",
        message=render_to_string("accounts/email/invitation.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )
    return True


def invitations_send_pending(*, user_ids: list[int] | None = None) -> int:
    """Send every pending invitation (or those of ``user_ids``): the task an
    import rings after commit, and the beat sweep that finds what a lost or
    refused message missed. Safe to run twice at once."""
    pending = User.objects.filter(invitation_pending=True).order_by("pk")
    if user_ids is not None:
        pending = pending.filter(pk__in=user_ids)
    return sum(
        invitation_send(user_id=user_id)
        for user_id in list(pending.values_list("pk", flat=True)[:1000])
    )


# --- Personal access tokens ---------------------------------------------------

TOKEN_PREFIX = "rfn_"  # noqa: S105 - the public prefix of every token, not a secret
# last_used_at is a hint for the artist ("used 3 days ago"), so it is written
# at most once per this interval: a burst of API calls does not turn every
# read into a write on the token's row.
TOKEN_LAST_USED_RESOLUTION = timedelta(minutes=1)


def token_digest(plaintext: str) -> str:
    """The SHA-256 (hex) under which a token is stored and looked up."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


@transaction.atomic
def token_create(*, user: User, name: str) -> tuple[PersonalAccessToken, str]:
    """Create a personal access token; return it with its plaintext.

    The plaintext (``rfn_`` and 256 random bits) is returned once and never
    stored: only its SHA-256 and its first 8 characters (for display) are.
    ``name`` is required and at most 100 characters (the form checks it).
    """
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("A token name is 1 to 100 characters.")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = PersonalAccessToken.objects.create(
        user=user,
        name=name,
        token_prefix=plaintext[:8],
        token_hash=token_digest(plaintext),
    )
    return token, plaintext


@transaction.atomic
def token_revoke(*, user: User, token_id: int) -> bool:
    """Revoke one of the user's tokens; from the commit on it is refused.

    Raises ``PersonalAccessToken.DoesNotExist`` for another user's or an
    unknown token. Idempotent: revoking a revoked token returns False and
    writes nothing.
    """
    token = PersonalAccessToken.objects.select_for_update().get(pk=token_id, user=user)
    if token.revoked_at is not None:
        return False
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    return True


def token_authenticate(*, plaintext: str) -> User | None:
    """The active user holding this unrevoked token, or None.

    One indexed lookup by hash; records ``last_used_at`` at most once per
    ``TOKEN_LAST_USED_RESOLUTION`` with a single UPDATE (autocommit, no lock
    held past it). A token revoked while a request is running is refused from
    the next request on.
    """
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 200:
        return None
    token = (
        PersonalAccessToken.objects.select_related("user")
        .filter(
            token_hash=token_digest(plaintext),
            revoked_at__isnull=True,
            user__is_active=True,
        )
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if (
        token.last_used_at is None
        or now - token.last_used_at >= TOKEN_LAST_USED_RESOLUTION
    ):
        PersonalAccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user
