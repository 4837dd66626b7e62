"""Settings shared by every way of running Refrain.

Every setting is declared here; ``local``, ``test`` and ``production`` only
change values. Values come from the environment through ``config.env``.
"""

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from config.env import BASE_DIR, VAR_DIR, ensure_var_dirs, env
from config.settings.beat import beat_schedule

# --- Core -------------------------------------------------------------------
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SITE_ID = 1

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# The site's English in place of allauth's Title Case ("Sign in", not "Sign
# In"): locale/en/LC_MESSAGES/django.po, compiled to django.mo beside it.
LOCALE_PATHS = [BASE_DIR / "locale"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    # Installed so that /api/v1/docs serves Swagger UI from ninja's own static
    # files; without it ninja links a CDN, which the app must not use (and the
    # Content-Security-Policy blocks).
    "ninja",
    "csp",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "accounts",
    "catalog",
    "consent",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Before anything reads the input: NUL, lone surrogates, invalid UTF-8 and
    # over-deep JSON are a 400 here, never a 500 from the database (inside
    # CSPMiddleware, so its answers carry the policy too).
    "config.input_guard.InputGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.PrivateResponsesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.StaffMFARequiredMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------
SQLITE_OPTIONS = {
    # WAL lets the web process read while the worker writes; IMMEDIATE takes
    # the write lock at BEGIN so two writers queue instead of deadlocking.
    "init_command": (
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
    ),
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def database_from_url(url: str) -> dict:
    """Parse a DATABASE_URL, adding the SQLite pragmas when it is SQLite."""
    config = env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
    else:
        config["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
        # A server that takes the connection and never answers is given up
        # on after this many seconds (libpq waits forever by default, so a
        # hung database would hang every request and /readyz with it).
        # psycopg counts whole seconds, at least 2.
        config.setdefault("OPTIONS", {})["connect_timeout"] = env.int(
            "REFRAIN_DB_CONNECT_TIMEOUT", default=3
        )
        # Django's cursors bind parameters on the client and never prepare;
        # only the consent switch's cursor binds on the server and asks for
        # its statement, a call of consent_switch() (source in consent/sql/,
        # called by consent/services/switch_postgres.py), to be prepared once
        # per connection.
        # Off behind a pooler that does not keep prepared statements
        # (PgBouncer in transaction mode before 1.21).
        config.setdefault("OPTIONS", {})["prepare_threshold"] = (
            5 if env.bool("REFRAIN_DB_PREPARED_STATEMENTS", default=True) else None
        )
    config["ATOMIC_REQUESTS"] = False
    return config


DATABASES = {
    "default": database_from_url(
        env.str("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
    )
}


# --- Cache (allauth's rate limits and TOTP replay protection live here) ------
def cache_from_url(url: str) -> dict:
    """Parse a CACHE_URL; a Redis cache that does not answer is given up on
    after 2 s (redis-py waits forever by default), so a hung cache fails
    sign-ins and /readyz quickly instead of hanging them."""
    config = env.cache_url_config(url)
    if config["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        config.setdefault("OPTIONS", {}).update(
            socket_connect_timeout=2.0, socket_timeout=2.0
        )
    return config


CACHES = {
    "default": cache_from_url(env.str("CACHE_URL", default="locmemcache://refrain"))
}

# --- Auth -------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation."
        "UserAttributeSimilarityValidator"
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "tracks:list"
LOGOUT_REDIRECT_URL = "home"

ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_REAUTHENTICATION_REQUIRED = True
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Refrain] "
ACCOUNT_USER_DISPLAY = "accounts.models.user_display"
ACCOUNT_DEFAULT_HTTP_PROTOCOL = env.str("ACCOUNT_DEFAULT_HTTP_PROTOCOL", default="http")
# allauth's defaults, spelled out because the product promises them:
# the 11th failed login from one address within a minute is refused.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
}
# A way in that the lockout above cannot close: a one-time code e-mailed to
# the account. Whoever trips the lockout with wrong passwords (to keep an
# artist out) does not have the artist's mailbox. A code is bound to the
# browser session that asked for it, works once, for 10 minutes (the words
# in templates/account/ say so), and three wrong tries end it. Requests are
# limited by allauth's request_login_code (20/m/ip, 3/m/key). An account with
# a second factor still needs it after the code.
ACCOUNT_LOGIN_BY_CODE_ENABLED = True
ACCOUNT_LOGIN_BY_CODE_TIMEOUT = 10 * 60
ACCOUNT_LOGIN_BY_CODE_MAX_ATTEMPTS = 3
# Behind a load balancer every request comes from its address: tell allauth
# how many proxies to look through so rate limits apply per client.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("ALLAUTH_TRUSTED_PROXY_COUNT", default=0)
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_TOTP_ISSUER = "Refrain"
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env.bool(
    "MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN", default=False
)

# Staff must enrol MFA before they may open any staff page.
REFRAIN_STAFF_MFA_REQUIRED = env.bool("REFRAIN_STAFF_MFA_REQUIRED", default=True)
REFRAIN_STAFF_PATH_PREFIXES = ["/admin/", "/audit/"]

# --- E-mail -----------------------------------------------------------------
# django-environ drops the first "/" of the path, hence four slashes for an
# absolute folder.
vars().update(env.email_url("EMAIL_URL", default=f"filemail:///{VAR_DIR / 'mail'}"))
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="Refrain <no-reply@refrain.local>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Static and media -------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- Celery -----------------------------------------------------------------
# A hostname keeps kombu from warning on every publish; the folders below
# are what the filesystem transport really uses.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost/")
CELERY_BROKER_CONNECTION_TIMEOUT = env.float(
    "CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0
)
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    ensure_var_dirs("broker/queue", "broker/processed", "broker/control")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder in and out: web, worker and beat share one local queue.
        "data_folder_in": str(VAR_DIR / "broker" / "queue"),
        "data_folder_out": str(VAR_DIR / "broker" / "queue"),
        "processed_folder": str(VAR_DIR / "broker" / "processed"),
        # Exchange bindings; kombu's default is "control" relative to the cwd.
        "control_folder": str(VAR_DIR / "broker" / "control"),
        "store_processed": False,
    }
else:
    # Longer than any task may run, so Redis does not redeliver a live task
    # (a bulk job or policy run whose worker died is resumed by its beat sweep
    # long before that). A broker that does not answer is given up on quickly.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every publish is a doorbell (config/doorbell.py): the work is in the
# database and a beat sweep finds it again, so a request whose broker is down
# gives up on the message within about a second instead of waiting on it.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Security (tightened in production) --------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # HTMX reads nothing from it; the token is in hx-headers
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
# Content-Security-Policy (django-csp 4) on every response: scripts and
# styles only from our own static files, never inline (HTMX's indicator style
# is off in base.html's htmx-config for that reason). ``data:`` images are
# allowed for the QR code allauth draws when an authenticator app is set up.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Logging ----------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# --- Catalogue --------------------------------------------------------------
REFRAIN_UPLOAD_MAX_BYTES = env.int(
    "REFRAIN_UPLOAD_MAX_BYTES", default=200 * 1000 * 1000
)
# Bearer tokens of the platform's catalogue system (import API).
REFRAIN_PLATFORM_TOKENS = env.list("REFRAIN_PLATFORM_TOKENS", default=[])
# Absolute links in e-mails sent by workers (no request to build them from).
# `make run` sets REFRAIN_HOST and REFRAIN_PORT (HOST, PORT) for every process
# it starts, so links and the demo partner's address follow the port served.
REFRAIN_SITE_URL = env.str(
    "REFRAIN_SITE_URL",
    default=f"http://{env.str('REFRAIN_HOST', default='127.0.0.1')}:"
    f"{env.int('REFRAIN_PORT', default=8000)}",
)
# The site's Ed25519 signing key (its 32-byte seed, base64url): ledger anchors
# are signed with it. Required in production; the embedded default generates
# one into var/.
REFRAIN_SIGNING_KEY = env.str("REFRAIN_SIGNING_KEY", default="")
# Baseline views for `make bench` (bench/views.py). Never on in production.
REFRAIN_BENCH_ENDPOINTS = env.bool("REFRAIN_BENCH_ENDPOINTS", default=False)

# --- Consent ----------------------------------------------------------------
# Receipt e-mails follow each artist's choice (/settings/consent/). "each"
# (the default): one e-mail per burst, sent once no receipt has come for
# REFRAIN_RECEIPT_BURST_MINUTES or the oldest has waited
# REFRAIN_RECEIPT_BURST_MAX_MINUTES; "daily": one e-mail after
# REFRAIN_RECEIPT_DAILY_HOUR (UTC) with the receipts since the last one;
# "none": no e-mail (the receipts stay downloadable). Beat's receipt sweep
# sends them; with a burst of 0 a doorbell after each commit sends at once.
REFRAIN_RECEIPT_BURST_MINUTES = env.float("REFRAIN_RECEIPT_BURST_MINUTES", default=3.0)
REFRAIN_RECEIPT_BURST_MAX_MINUTES = env.float(
    "REFRAIN_RECEIPT_BURST_MAX_MINUTES", default=15.0
)
REFRAIN_RECEIPT_DAILY_HOUR = env.int("REFRAIN_RECEIPT_DAILY_HOUR", default=6)
if not 0 <= REFRAIN_RECEIPT_DAILY_HOUR <= 23:
    raise ImproperlyConfigured("REFRAIN_RECEIPT_DAILY_HOUR must be 0 to 23 (UTC).")
if not 0 <= REFRAIN_RECEIPT_BURST_MINUTES <= REFRAIN_RECEIPT_BURST_MAX_MINUTES:
    raise ImproperlyConfigured(
        "REFRAIN_RECEIPT_BURST_MINUTES must be at least 0 and at most "
        "REFRAIN_RECEIPT_BURST_MAX_MINUTES."
    )
# One wake-up of the receipt sender per process per this many seconds at most.
REFRAIN_RECEIPT_DOORBELL_SECONDS = env.float(
    "REFRAIN_RECEIPT_DOORBELL_SECONDS", default=1.0
)
# One receipt sender at a time hands on (rings itself) after this long.
REFRAIN_RECEIPT_RUN_SECONDS = env.float("REFRAIN_RECEIPT_RUN_SECONDS", default=5.0)
REFRAIN_JURISDICTION = env.str("REFRAIN_JURISDICTION", default="EU")
REFRAIN_CONTROLLER_NAME = env.str("REFRAIN_CONTROLLER_NAME", default="The platform")
REFRAIN_CONTROLLER_CONTACT = env.str(
    "REFRAIN_CONTROLLER_CONTACT", default="privacy@refrain.local"
)
# Bulk changes up to this many tracks happen in the request; more in a task.
REFRAIN_BULK_INLINE_LIMIT = env.int("REFRAIN_BULK_INLINE_LIMIT", default=500)
# A bulk job runs this many tracks per transaction; whoever runs it holds it
# for REFRAIN_BULK_LEASE_SECONDS, extended with each chunk. When the lease
# runs out (the runner died) the beat sweep hands the job to another worker;
# after REFRAIN_BULK_MAX_ATTEMPTS runs that did not finish, it is failed.
REFRAIN_BULK_CHUNK_SIZE = env.int("REFRAIN_BULK_CHUNK_SIZE", default=2000)
REFRAIN_BULK_LEASE_SECONDS = env.float("REFRAIN_BULK_LEASE_SECONDS", default=30.0)
REFRAIN_BULK_MAX_ATTEMPTS = env.int("REFRAIN_BULK_MAX_ATTEMPTS", default=5)

# --- Public signals (consent.signals) -----------------------------------------
# robots.txt, /.well-known/tdmrep.json and /license.rsl list the tracks whose
# answer differs from the /t/ default (nothing permitted) while each stays
# under this many bytes (robots.txt parsers read 500 KiB); the rest keep the
# default there and are answered precisely on their own pages. Built once per
# change of the change feed and cached this long.
REFRAIN_SIGNALS_MAX_BYTES = env.int("REFRAIN_SIGNALS_MAX_BYTES", default=480_000)
REFRAIN_SIGNALS_CACHE_SECONDS = env.int(
    "REFRAIN_SIGNALS_CACHE_SECONDS", default=24 * 60 * 60
)
# Downloads carry the answer in their tags: a worker writes a tagged copy of
# each track's audio per consent version into this directory (shared by web
# and worker processes, like REFRAIN_EXPORT_DIR; the originals are never
# altered, and only the newest version's copy is kept).
REFRAIN_TAGGED_AUDIO_DIR = env.str(
    "REFRAIN_TAGGED_AUDIO_DIR", default=str(VAR_DIR / "tagged-audio")
)

# --- Propagation -------------------------------------------------------------
# Webhooks may reach loopback and private addresses only with this on (tests
# and the embedded demo, whose receiver is served by the app itself).
REFRAIN_WEBHOOK_ALLOW_PRIVATE = env.bool("REFRAIN_WEBHOOK_ALLOW_PRIVATE", default=False)
REFRAIN_WEBHOOK_TIMEOUT_SECONDS = env.float(
    "REFRAIN_WEBHOOK_TIMEOUT_SECONDS", default=15.0
)
# Seconds to wait after the 1st, 2nd, ... failure in a row (Standard Webhooks:
# 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h), with +/-10 % jitter;
# a row that fails once more is dead-lettered.
REFRAIN_WEBHOOK_RETRY_SCHEDULE = [
    float(seconds)
    for seconds in env.list(
        "REFRAIN_WEBHOOK_RETRY_SCHEDULE",
        default=[
            "5",
            "300",
            "1800",
            "7200",
            "18000",
            "36000",
            "50400",
            "72000",
            "86400",
        ],
    )
]
# A failing consumer is tried again at most this long after its last failure
# (sooner per the schedule), longer only when it sends Retry-After.
REFRAIN_WEBHOOK_PROBE_SECONDS = env.float(
    "REFRAIN_WEBHOOK_PROBE_SECONDS", default=300.0
)
# Disabled (and policy admins e-mailed) after failing this many days straight.
REFRAIN_WEBHOOK_DISABLE_AFTER_DAYS = env.int(
    "REFRAIN_WEBHOOK_DISABLE_AFTER_DAYS", default=5
)
# A rotated secret keeps signing (both signatures sent) for this long.
REFRAIN_WEBHOOK_SECRET_GRACE_HOURS = env.int(
    "REFRAIN_WEBHOOK_SECRET_GRACE_HOURS", default=24
)
# The demo's own webhook receiver at /demo/webhook/ (a 404 when off): it
# verifies what is sent to the consumer of this name and keeps what it was
# told in REFRAIN_DEMO_RECEIVER_DIR. On only in the embedded demo (local.py).
REFRAIN_DEMO_RECEIVER = env.bool("REFRAIN_DEMO_RECEIVER", default=False)
REFRAIN_DEMO_RECEIVER_CONSUMER = env.str(
    "REFRAIN_DEMO_RECEIVER_CONSUMER", default="Demo partner"
)
REFRAIN_DEMO_RECEIVER_DIR = env.str(
    "REFRAIN_DEMO_RECEIVER_DIR", default=str(VAR_DIR / "demo-receiver")
)
# Tracks per request, and how long a runner holds its claim (longer than the
# timeout); a runner hands on after REFRAIN_DELIVERY_RUN_SECONDS.
REFRAIN_DELIVERY_BATCH_SIZE = env.int("REFRAIN_DELIVERY_BATCH_SIZE", default=500)
REFRAIN_DELIVERY_LEASE_SECONDS = env.float(
    "REFRAIN_DELIVERY_LEASE_SECONDS", default=60.0
)
REFRAIN_DELIVERY_RUN_SECONDS = env.float("REFRAIN_DELIVERY_RUN_SECONDS", default=10.0)
# One propagation doorbell per process per this many seconds at most.
REFRAIN_PROPAGATION_DOORBELL_SECONDS = env.float(
    "REFRAIN_PROPAGATION_DOORBELL_SECONDS", default=0.1
)
REFRAIN_PROPAGATION_SWEEP_SECONDS = env.float(
    "REFRAIN_PROPAGATION_SWEEP_SECONDS", default=5.0
)

CELERY_BEAT_SCHEDULE = beat_schedule(sweep_seconds=REFRAIN_PROPAGATION_SWEEP_SECONDS)

# The partner API (consent.partners). A key's rate limit is per minute; a
# new key gets REFRAIN_API_KEY_RATE_LIMIT unless it is given its own. The
# public trainability answer is limited per address and cached by clients
# for REFRAIN_TRAINABILITY_MAX_AGE seconds.
REFRAIN_API_KEY_RATE_LIMIT = env.int("REFRAIN_API_KEY_RATE_LIMIT", default=600)
REFRAIN_PUBLIC_RATE_LIMIT = env.int("REFRAIN_PUBLIC_RATE_LIMIT", default=120)
REFRAIN_TRAINABILITY_MAX_AGE = env.int("REFRAIN_TRAINABILITY_MAX_AGE", default=60)
# Signed exports: files under REFRAIN_EXPORT_DIR; one older than
# REFRAIN_EXPORT_MAX_AGE_SECONDS is rebuilt before it is served again.
REFRAIN_EXPORT_DIR = env.str("REFRAIN_EXPORT_DIR", default=str(VAR_DIR / "exports"))
REFRAIN_EXPORT_MAX_AGE_SECONDS = env.int(
    "REFRAIN_EXPORT_MAX_AGE_SECONDS", default=15 * 60
)
# The change feed keeps at least this many days; look-ups 13 months.
REFRAIN_FEED_KEEP_DAYS = env.int("REFRAIN_FEED_KEEP_DAYS", default=35)
REFRAIN_LOOKUP_KEEP_DAYS = env.int("REFRAIN_LOOKUP_KEEP_DAYS", default=13 * 31)
REFRAIN_LOOKUP_DOORBELL_SECONDS = env.float(
    "REFRAIN_LOOKUP_DOORBELL_SECONDS", default=2.0
)
