"""The staff partner pages, under /audit/partners/ (the staff MFA gate)."""

from django.urls import path

from consent.views import partners

app_name = "partners"

urlpatterns = [
    path("", partners.partner_list, name="list"),
    path("new/", partners.partner_new, name="new"),
    path("<int:partner_id>/", partners.partner_detail, name="detail"),
    path("<int:partner_id>/keys/new/", partners.partner_key_new, name="key_new"),
    path("catalog-keys/new/", partners.catalog_key_new, name="catalog_key_new"),
    path("keys/<int:key_id>/revoke/", partners.key_revoke, name="key_revoke"),
]
