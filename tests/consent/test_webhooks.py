"""consent/propagation/webhooks.py at unit level: the URL check for forms, the
address check after resolution, and the reading of ``Retry-After``."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks.webhooks import Webhook

from consent.propagation.webhooks import (
    AddressRefused,
    _retry_after,
    resolve_public,
    secret_new,
    signature_header,
    url_problem,
)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("https://partner.example/hooks/refrain", ""),
        ("http://partner.example:8080/hook?x=1", ""),
        ("ftp://partner.example/hook", "The URL must start with https:// (or http://)."),
        ("partner.example/hook", "The URL must start with https:// (or http://)."),
        ("https:///hook", "The URL has no host name."),
        ("https://u:p@partner.example/", "The URL must not carry a user name or password."),  # noqa: E501
        ("https://partner.example:0/", "The URL's port is not valid."),
        ("https://partner.example:99999/", "This is not a valid URL."),
        ("https://[::1/", "This is not a valid URL."),
    ],
)  # fmt: skip
def test_url_problem_says_why_a_url_cannot_be_a_webhook(url, problem):
    assert url_problem(url) == problem


@pytest.mark.parametrize(
    "host, shown, kind",
    [
        ("127.0.0.1", "127.0.0.1", "a loopback address"),
        ("10.0.0.8", "10.0.0.8", "a private address"),
        ("172.16.5.4", "172.16.5.4", "a private address"),
        ("169.254.169.254", "169.254.169.254", "a link-local address"),
        ("::1", "::1", "a loopback address"),
        ("fe80::1", "fe80::1", "a link-local address"),
        ("fd00::1", "fd00::1", "a private address"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1", "a private address"),
        ("239.1.2.3", "239.1.2.3", "a multicast address"),
        ("localhost", "127.0.0.1", "a loopback address"),
    ],
)
def test_resolve_public_refuses_addresses_that_are_not_public(
    settings, host, shown, kind
):
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(AddressRefused) as refused:
        resolve_public(host, 80)
    assert str(refused.value) == (
        f"{host} resolves to {shown}, {kind}; webhooks are only sent to "
        "public addresses."
    )


def test_resolve_public_lets_a_public_address_and_allowed_private_ones_through(
    settings,
):
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = False
    assert resolve_public("93.184.216.34", 443) == ["93.184.216.34"]
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    assert resolve_public("127.0.0.1", 80) == ["127.0.0.1"]


def test_resolve_public_refuses_a_name_that_does_not_resolve(settings):
    settings.REFRAIN_WEBHOOK_ALLOW_PRIVATE = True
    with pytest.raises(AddressRefused) as refused:
        resolve_public("no-such-host.invalid", 443)
    assert str(refused.value).startswith(
        "The host name 'no-such-host.invalid' does not resolve ("
    )


def test_retry_after_reads_seconds_and_dates_and_ignores_the_rest():
    # seconds, capped at a day
    assert _retry_after("120") == 120.0
    assert _retry_after(" 7 ") == 7.0
    assert _retry_after("999999999") == 86400.0
    # an HTTP date: the seconds until then (none once passed)
    later = datetime.now(tz=UTC) + timedelta(seconds=90)
    assert 85.0 <= _retry_after(format_datetime(later, usegmt=True)) <= 90.0
    earlier = datetime.now(tz=UTC) - timedelta(hours=1)
    assert _retry_after(format_datetime(earlier, usegmt=True)) == 0.0
    # nothing usable
    assert _retry_after(None) is None
    assert _retry_after("") is None
    assert _retry_after("soon") is None
    assert _retry_after("-5") is None
    assert _retry_after("١٢") is None  # digits, but not ASCII ones


def test_signature_header_signs_once_per_secret_in_order():
    new, old = secret_new(), secret_new()
    at = datetime.now(tz=UTC)
    header = signature_header(secrets_=[new, old], message_id="msg_1", at=at, body="{}")
    first, second = header.split(" ")
    assert first == Webhook(new).sign(msg_id="msg_1", timestamp=at, data="{}")
    assert second == Webhook(old).sign(msg_id="msg_1", timestamp=at, data="{}")
    assert new.startswith("whsec_") and len(new) == len("whsec_") + 44
