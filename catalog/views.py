from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest
from django.utils.text import slugify
from django.views.decorators.http import require_GET

from catalog.models import Track
from catalog.selectors import track_for_owner


@login_required
@require_GET
def track_audio(request: HttpRequest, public_id: str) -> FileResponse:
    """The original file, to its owner only, always as a download."""
    track = track_for_owner(owner=request.user, public_id=public_id)
    if not track.audio_file:
        raise Http404("This track has no audio file.")
    return audio_download(
        track, track.audio_file.open("rb"), track.audio_file.name.rsplit(".", 1)[-1]
    )


def audio_download(track: Track, handle, extension: str) -> FileResponse:
    """A track's audio (``handle``, closed by the response) as a private
    download named after its title."""
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"{slugify(track.title) or 'track'}.{extension}",
        content_type=track.audio_mime_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
