from django.contrib.auth.models import (
    AbstractBaseUser,
    BaseUserManager,
    PermissionsMixin,
)
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> "User":
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(
        self, email: str, password: str | None = None, **extra
    ) -> "User":
        extra["is_staff"] = True
        extra["is_superuser"] = True
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """An account. The e-mail address is the login; there is no username.

    The artist profile (the name shown on tracks and receipts) lives on the
    user: every account on the platform is an artist or staff, and one row
    keeps every read of "who is this" a primary-key lookup.
    """

    email = models.EmailField("e-mail address", max_length=254, unique=True)
    display_name = models.CharField(
        "artist name",
        max_length=120,
        blank=True,
        help_text="The name shown on your tracks and consent receipts.",
    )
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # An account created by a catalogue import whose set-your-password
    # invitation has not been sent yet: the outbox that the invitation task
    # and its beat sweep read (``accounts.services.invitations_send_pending``).
    invitation_pending = models.BooleanField(default=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = "user"
        verbose_name_plural = "users"
        constraints = [
            models.UniqueConstraint(
                Lower("email"), name="accounts_user_email_ci_unique"
            ),
        ]
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(invitation_pending=True),
                name="accounts_user_invite_pending",
            ),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def public_name(self) -> str:
        return self.display_name or self.email.split("@", 1)[0]


def user_display(user: User) -> str:
    """How allauth names a user on its pages and e-mails."""
    return user.public_name


class PersonalAccessToken(models.Model):
    """A token an artist creates to call the API as themselves.

    Sent as ``Authorization: Bearer rfn_…``. Only the SHA-256 of the token is
    stored (a leaked table yields no usable token); the plaintext is shown
    once, when it is created. ``token_prefix`` (its first 8 characters) lets
    the artist tell tokens apart. A revoked token is kept, with ``revoked_at``
    set, and is refused from then on. Every write is in ``accounts.services``.
    """

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField(max_length=100)
    token_prefix = models.CharField(max_length=8)
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["token_hash"], name="accounts_token_hash_uniq"
            ),
        ]
        indexes = [
            models.Index(
                fields=["user", "-created_at"], name="accounts_token_user_created"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
