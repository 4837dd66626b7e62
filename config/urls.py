from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

from accounts import views as account_views
from config import health
from config.api import api
from consent import views as consent_views
from consent.views import demo_receiver, transparency

# /admin/ signs in through allauth, so its rate limits and MFA apply there too.
admin.autodiscover()
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = "Refrain staff"
admin.site.site_title = "Refrain staff"

urlpatterns = [
    path("", account_views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("accounts/", include("allauth.urls")),
    path("settings/consent/", consent_views.consent_settings, name="consent_settings"),
    path("settings/", include("accounts.urls")),
    path("tracks/", include("consent.track_urls")),
    path(
        "receipts/<uuid:public_id>.json",
        consent_views.receipt_download,
        name="receipt",
    ),
    path("audit/consumers/", include("consent.consumer_urls")),
    path("audit/partners/", include("consent.partner_urls")),
    path("audit/", include("consent.urls")),
    path("policy/", transparency.policy_page, name="public_policy"),
    path("transparency/", transparency.transparency_page, name="transparency"),
    path("transparency/anchors/", transparency.anchor_list, name="anchor_list"),
    path(
        ".well-known/refrain-keys.json",
        transparency.signing_keys,
        name="signing_keys",
    ),
    # A 404 unless REFRAIN_DEMO_RECEIVER is on (the view checks, so a test
    # can turn it on and off without reloading the URLs).
    path("demo/webhook/", demo_receiver.demo_webhook, name="demo_webhook"),
    # Public signals: /t/<id>/, robots.txt, /.well-known/tdmrep.json, /license.rsl
    path("", include("consent.signals.urls")),
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
]

if settings.REFRAIN_BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/", include("bench.urls")))
