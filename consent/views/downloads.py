"""The artist's download of a track: its audio with the track's AI-use answer
in the file's own tags (``consent.services.tagged_audio``)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from catalog.selectors import track_for_owner
from catalog.views import audio_download
from consent.services import tagged_copy_open
from consent.signals import tags

# Seconds the "being prepared" page waits before it asks again.
RETRY_SECONDS = 3


@login_required
@require_safe
def track_download(request: HttpRequest, public_id: str) -> HttpResponse:
    """The tagged copy of the track's audio at its current consent version,
    to its owner only (another artist's track is a 404), as a download.

    When the worker has not written that copy yet (a change a moment ago),
    the answer says so (202, with ``Retry-After``) and the worker is rung:
    the request never writes tags and never waits for them. The page then
    asks again (HTMX) and gets only its box back, with the link once ready.
    """
    track = track_for_owner(owner=request.user, public_id=public_id)
    if not track.audio_file:
        raise Http404("This track has no audio file.")
    found = tagged_copy_open(track=track)
    context = {"track": track, "failed": found.failed, "retry_seconds": RETRY_SECONDS}
    if request.htmx:  # the pending page asking again: its box, never the file
        if found.file is not None:
            found.file.close()
        return render(
            request,
            "consent/_download_state.html",
            {**context, "ready": found.file is not None},
        )
    if found.file is not None:
        return audio_download(track, found.file, tags.extension(track.audio_file.name))
    response = render(
        request,
        "consent/download_pending.html",
        context,
        status=500 if found.failed else 202,
    )
    if found.preparing:
        response["Retry-After"] = str(RETRY_SECONDS)
    response["Cache-Control"] = "private, no-store"
    return response
