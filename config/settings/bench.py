"""Production settings as `make bench` serves them: plain HTTP on loopback, the
baseline views mounted. Everything else is exactly production."""

from .production import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
REFRAIN_BENCH_ENDPOINTS = True
LOGGING = {"version": 1, "disable_existing_loggers": False}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# The no-op task the delivery benchmark compares with (bench/tasks.py).
CELERY_IMPORTS = ["bench.tasks"]
