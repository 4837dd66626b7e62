"""The public trainability answer: no key, cached, limited per address."""

from datetime import datetime
from typing import Annotated

from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.http import quote_etag
from ninja import Path, Router, Schema
from pydantic import Field

from config.api_errors import ErrorOut, error_response
from consent.api_types import TrackIdentifier, iso_time
from consent.models import TrackConsent
from consent.partners import (
    rate_limit_wait,
    track_by_identifier,
)
from consent.uses import USE_ORDER

router = Router(tags=["public"])


class TrainabilityOut(Schema):
    id: str
    permitted: dict[str, bool] = Field(description="per use")
    as_of: datetime
    consent_version: int


def _client_address(request: HttpRequest) -> str:
    """The caller's address as allauth's rate limits take it (behind
    ``ALLAUTH_TRUSTED_PROXY_COUNT`` proxies, from X-Forwarded-For)."""
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:
        return "unknown"


@router.get(
    "/tracks/{identifier}/trainability",
    auth=None,
    response={
        200: TrainabilityOut,
        304: None,
        400: ErrorOut,
        404: ErrorOut,
        429: ErrorOut,
    },
    summary="Public: what a track may be used for (no key)",
    tags=["public"],
)
def trainability(
    request: HttpRequest,
    identifier: Annotated[TrackIdentifier, Path(description="ISRC or public track id")],
):
    """``permitted`` per use, as every consumer is told. Public, cacheable
    for a minute, limited per address."""
    wait = rate_limit_wait(
        bucket=f"ip:{_client_address(request)}",
        limit=settings.REFRAIN_PUBLIC_RATE_LIMIT,
    )
    if wait is not None:
        return error_response(
            429,
            "rate_limited",
            f"Too many requests from this address: try again in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    track = track_by_identifier(identifier)
    if track is None:
        return error_response(404, "not_found", "No track has this ISRC or id.")
    answers = dict(
        TrackConsent.objects.filter(track=track).values_list("use", "eligible")
    )
    etag = quote_etag(f"{track.public_id}-{track.consent_version}")
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        response = JsonResponse(
            {
                "id": track.public_id,
                "permitted": {use: bool(answers.get(use)) for use in USE_ORDER},
                "as_of": iso_time(timezone.now()),
                "consent_version": track.consent_version,
            }
        )
    response["ETag"] = etag
    response["Cache-Control"] = (
        f"public, max-age={settings.REFRAIN_TRAINABILITY_MAX_AGE}"
    )
    return response
