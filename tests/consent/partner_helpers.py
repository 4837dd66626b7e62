"""Shared helpers of the partner API tests: keys, a client that sends them."""

import json

from django.test import Client

from consent.models import ApiKey, Partner
from consent.partners import apikey_create, partner_create


def partner_key(
    name: str = "Acme AI", *, rate_limit: int | None = None
) -> tuple[Partner, str]:
    partner = Partner.objects.filter(name=name).first() or partner_create(name=name)
    _, plaintext = apikey_create(
        name=f"{name} key",
        scope=ApiKey.Scope.PARTNER,
        partner=partner,
        rate_limit=rate_limit,
    )
    return partner, plaintext


def catalog_key() -> str:
    return apikey_create(name="catalogue feed", scope=ApiKey.Scope.CATALOG)[1]


def post_json(client: Client, url: str, body, key: str | None = None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(
        url, data=json.dumps(body), content_type="application/json", headers=headers
    )


def get(client: Client, url: str, key: str | None = None, **params):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.get(url, params, headers=headers)
