import re

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods, require_safe

from catalog.forms import TrackEditForm
from catalog.models import Track
from catalog.selectors import track_for_owner
from catalog.services import track_update

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


@login_required
@require_GET
def track_audio(request: HttpRequest, public_id: str) -> FileResponse:
    """The original file, to its owner only, always as a download."""
    track = _with_audio(request, public_id)
    return audio_download(
        track, track.audio_file.open("rb"), track.audio_file.name.rsplit(".", 1)[-1]
    )


def _with_audio(request: HttpRequest, public_id: str) -> Track:
    track = track_for_owner(owner=request.user, public_id=public_id)
    if not track.audio_file:
        raise Http404("This track has no audio file.")
    return track


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


@login_required
@require_safe
def track_play(request: HttpRequest, public_id: str) -> HttpResponse:
    """The original file for the page's audio player, to its owner only:
    inline, with byte ranges (RFC 9110 §14), so a player can seek."""
    track = _with_audio(request, public_id)
    size = track.audio_file.size
    content_type = track.audio_mime_type or "application/octet-stream"
    start, end, status = 0, size - 1, 200
    header = request.headers.get("Range", "")
    if header:
        found = _RANGE.match(header.strip())
        first, last = found.groups() if found else ("", "")
        if found and first:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        elif found and last:  # the last N bytes
            start, end = max(size - int(last), 0), size - 1
        if not found or not (first or last) or start > end or start >= size:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        status = 206
    response = StreamingHttpResponse(
        _read(track, start, end) if request.method == "GET" else iter(()),
        status=status,
        content_type=content_type,
    )
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def _read(track: Track, start: int, end: int):
    with track.audio_file.open("rb") as handle:
        handle.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = handle.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


@login_required
@require_http_methods(["GET", "POST"])
def track_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    """Correct the track's title and ISRC."""
    track = track_for_owner(owner=request.user, public_id=public_id)
    form = TrackEditForm(request.POST or None, track=track)
    if request.method == "POST" and form.is_valid():
        changed = track_update(
            track=track,
            title=form.cleaned_data["title"],
            isrc=form.cleaned_data["isrc"],
        )
        messages.success(
            request, "Saved." if changed else "Nothing changed: that is what it was."
        )
        return redirect(track)
    return render(
        request,
        "catalog/track_edit.html",
        {"form": form, "track": track},
        status=400 if form.is_bound else 200,
    )
