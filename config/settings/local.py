"""The embedded default: SQLite, the filesystem broker, mail to files, all in var/."""

from config.env import ensure_var_dirs, generated_secret_key, generated_signing_key

from .base import *  # noqa: F403
from .base import env

ensure_var_dirs("mail", "media", "staticfiles")

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or generated_secret_key()
REFRAIN_SIGNING_KEY = (
    env.str("REFRAIN_SIGNING_KEY", default="") or generated_signing_key()
)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
REFRAIN_STAFF_MFA_REQUIRED = env.bool("REFRAIN_STAFF_MFA_REQUIRED", default=False)
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True
# The demo's partner consumer is the app's own receiver, on loopback.
REFRAIN_DEMO_RECEIVER = env.bool("REFRAIN_DEMO_RECEIVER", default=True)
REFRAIN_WEBHOOK_ALLOW_PRIVATE = env.bool("REFRAIN_WEBHOOK_ALLOW_PRIVATE", default=True)
# Manifest storage needs collectstatic; in development serve straight from the finders.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
