from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from catalog.audio import AudioInfo, inspect_audio
from catalog.isrc import normalise_isrc
from catalog.models import LicenseClass, Track
from catalog.selectors import (
    DEFAULT_SORT,
    SORT_LABELS,
    SORTS,
    TrackFilters,
    decode_cursor,
)


class TrackFilterForm(forms.Form):
    q = forms.CharField(
        label="Search by title or ISRC", required=False, max_length=200, strip=True
    )
    license = forms.ChoiceField(
        label="Licence",
        required=False,
        choices=[("", "All licences"), *LicenseClass.choices],
    )
    sort = forms.ChoiceField(
        label="Sort by", required=False, choices=list(SORT_LABELS.items())
    )
    cursor = forms.CharField(required=False, max_length=400, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        cursor = cleaned.get("cursor")
        sort = cleaned.get("sort") or DEFAULT_SORT
        if cursor and decode_cursor(cursor, SORTS[sort][0], sort) is None:
            self.add_error(
                "cursor",
                "That page link is broken or out of date; showing the first page.",
            )
        return cleaned

    def filters(self) -> TrackFilters:
        """The valid filters; an invalid value is dropped (and reported).

        Only the invalid field is dropped: ``cleaned_data`` keeps every field
        that validated, so ``license=bogus`` does not also lose the search.
        """
        self.is_valid()
        data = self.cleaned_data
        return TrackFilters(
            q=data.get("q", ""),
            license=data.get("license", ""),
            sort=data.get("sort") or DEFAULT_SORT,
        )


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleAudioField(forms.FileField):
    widget = MultipleFileInput

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "audio/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        if not files:
            raise ValidationError("Choose at least one audio file.", code="required")
        return files


class TrackUploadForm(forms.Form):
    files = MultipleAudioField(
        label="Audio files",
        help_text="MP3, WAV, FLAC, Ogg or M4A, up to "
        f"{settings.REFRAIN_UPLOAD_MAX_BYTES // 1_000_000} MB each. "
        "You can choose several.",
    )

    def clean_files(self) -> list[tuple[object, AudioInfo]]:
        """Inspect every file; all must be valid or none is stored."""
        checked, errors = [], []
        for upload in self.cleaned_data["files"]:
            try:
                info = inspect_audio(
                    upload,
                    name=upload.name,
                    size=upload.size,
                    max_bytes=settings.REFRAIN_UPLOAD_MAX_BYTES,
                )
            except ValidationError as error:
                errors.append(error)
            else:
                checked.append((upload, info))
        if errors:
            raise ValidationError(errors)
        return checked


class TrackEditForm(forms.Form):
    """A track's title and ISRC, as its artist corrects them. A
    label-licensed track's ISRC is the label catalogue's: shown, not edited."""

    title = forms.CharField(label="Title", max_length=300, strip=True)
    isrc = forms.CharField(
        label="ISRC",
        required=False,
        max_length=20,
        strip=True,
        help_text="12 characters, like US-RC1-76-07839. Leave it empty if the "
        "recording has none.",
    )

    def __init__(self, *args, track, **kwargs):
        self.track = track
        kwargs.setdefault("initial", {"title": track.title, "isrc": track.isrc_display})
        super().__init__(*args, **kwargs)
        if track.license_class == LicenseClass.LABEL:
            self.fields["isrc"].disabled = True
            self.fields[
                "isrc"
            ].help_text = "Set by your label's catalogue: ask your label to correct it."

    def clean_isrc(self) -> str | None:
        if self.fields["isrc"].disabled:
            return self.track.isrc
        value = self.cleaned_data["isrc"]
        if not value:
            return None
        isrc = normalise_isrc(value)
        if Track.objects.filter(isrc=isrc).exclude(pk=self.track.pk).exists():
            raise ValidationError(
                "Another track on the platform already has this ISRC. Check it "
                "against your distributor's records."
            )
        return isrc
