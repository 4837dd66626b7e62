"""Public, no sign-in: a track's AI-use answer in words and in every
machine-readable format, and the site-wide signal documents.

Everything is derived from the track's stored eligibility (what consumers are
told) through ``consent.signals``; the page shows only the title, the artist's
name, the licence class and the answer per use: no e-mail address, no audio,
no decision or its history, nothing of any other track.
"""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from catalog.models import LicenseClass, Track
from catalog.selectors import track_public
from consent.selectors import permitted_for_track
from consent.signals.documents import SITE_LICENSE_PATH, TrackSignals, track_signals
from consent.signals.formats import RSL_MEDIA_TYPE
from consent.signals.site import site_document
from consent.uses import USE_ORDER, USES

# How long shared caches may keep a machine-readable answer (seconds).
DOCUMENT_MAX_AGE = 60
SITE_DOCUMENT_MAX_AGE = 300


def _signals(public_id: str) -> tuple[Track, TrackSignals]:
    track = track_public(public_id=public_id)
    signals = track_signals(
        public_id=track.public_id,
        permitted=permitted_for_track(track=track),
        site=settings.REFRAIN_SITE_URL,
    )
    return track, signals


def _with_headers(response: HttpResponse, signals: TrackSignals) -> HttpResponse:
    for name, value in signals.headers.items():
        response[name] = value
    return response


@require_safe
def track_page(request: HttpRequest, public_id: str) -> HttpResponse:
    """The public page of a track: its answer per use in plain words, every
    signal in its headers and markup (an unknown id is a 404)."""
    track, signals = _signals(public_id)
    uses = [
        {
            "slug": use,
            "name": USES[use].name,
            "description": USES[use].description,
            "permitted": signals.permitted[use],
        }
        for use in USE_ORDER
    ]
    response = render(
        request,
        "consent/public_track.html",
        {
            "track": track,
            "artist_name": track.artist.display_name,
            "is_label": track.license_class == LicenseClass.LABEL,
            "license_class": LicenseClass(track.license_class).label,
            "uses": uses,
            "signals": signals,
            "site_license_path": SITE_LICENSE_PATH,
        },
    )
    return _with_headers(response, signals)


@require_safe
def track_training_mining(request: HttpRequest, public_id: str) -> JsonResponse:
    """The track's CAWG ``cawg.training-mining`` assertion."""
    _, signals = _signals(public_id)
    response = JsonResponse(signals.cawg)
    patch_cache_control(response, public=True, max_age=DOCUMENT_MAX_AGE)
    return response


@require_safe
def track_license(request: HttpRequest, public_id: str) -> HttpResponse:
    """The track's RSL 1.0 licence document."""
    _, signals = _signals(public_id)
    response = HttpResponse(signals.rsl, content_type=RSL_MEDIA_TYPE)
    patch_cache_control(response, public=True, max_age=DOCUMENT_MAX_AGE)
    return response


def _site_document(name: str, content_type: str) -> HttpResponse:
    response = HttpResponse(site_document(name), content_type=content_type)
    patch_cache_control(response, public=True, max_age=SITE_DOCUMENT_MAX_AGE)
    return response


@require_safe
def robots_txt(request: HttpRequest) -> HttpResponse:
    return _site_document("robots.txt", "text/plain; charset=utf-8")


@require_safe
def tdmrep_json(request: HttpRequest) -> HttpResponse:
    return _site_document("tdmrep.json", "application/json")


@require_safe
def site_license(request: HttpRequest) -> HttpResponse:
    return _site_document("license.rsl", RSL_MEDIA_TYPE)
