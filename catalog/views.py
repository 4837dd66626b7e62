from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.text import slugify
from django.views.decorators.http import require_GET, require_http_methods

from catalog.forms import TrackUploadForm
from catalog.selectors import track_for_owner
from catalog.services import tracks_upload


@login_required
@require_GET
def track_audio(request: HttpRequest, public_id: str) -> FileResponse:
    """The original file, to its owner only, always as a download."""
    track = track_for_owner(owner=request.user, public_id=public_id)
    if not track.audio_file:
        raise Http404("This track has no audio file.")
    extension = track.audio_file.name.rsplit(".", 1)[-1]
    response = FileResponse(
        track.audio_file.open("rb"),
        as_attachment=True,
        filename=f"{slugify(track.title) or 'track'}.{extension}",
        content_type=track.audio_mime_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def track_upload(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = TrackUploadForm(request.POST, request.FILES)
        if form.is_valid():
            created = tracks_upload(
                artist=request.user, uploads=form.cleaned_data["files"]
            )
            count = len(created)
            messages.success(
                request,
                f"Uploaded {count} track{'s' if count != 1 else ''}. "
                "Nothing is used for AI until you say yes.",
            )
            if count == 1:
                return redirect(created[0])
            return redirect("tracks:list")
        status = 400
    else:
        form = TrackUploadForm()
        status = 200
    return render(request, "catalog/track_upload.html", {"form": form}, status=status)
