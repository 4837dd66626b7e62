"""Production: secrets are required, and ``check --deploy`` passes with no warning."""

from .base import *  # noqa: F403
from .base import cache_from_url, database_from_url, env

DEBUG = False
# No defaults: the process refuses to start without these. In particular no
# fallback to the embedded stack: every web process and worker must share one
# broker and one cache (allauth's rate limits and TOTP replay protection live
# there), which local memory and the filesystem broker are not. ``base`` read
# the same two variables; reading them again without a default only adds the
# refusal.
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
REFRAIN_SIGNING_KEY = env.str("REFRAIN_SIGNING_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
DATABASES = {"default": database_from_url(env.str("DATABASE_URL"))}
CACHES = {"default": cache_from_url(env.str("CACHE_URL"))}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
# Absolute links in e-mails, receipts and the public signals: the address the
# site is served on (no HOST/PORT guess behind a proxy).
REFRAIN_SITE_URL = env.str("REFRAIN_SITE_URL")

REFRAIN_STAFF_MFA_REQUIRED = env.bool("REFRAIN_STAFF_MFA_REQUIRED", default=True)
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https"

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
REFRAIN_BENCH_ENDPOINTS = False
REFRAIN_DEMO_RECEIVER = False
