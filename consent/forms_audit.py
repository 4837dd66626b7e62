"""The audit pages' query forms: each refuses what it cannot answer with a
sentence, and the page then shows no results rather than a guess."""

from django import forms
from django.db.models.functions import Lower

from accounts.models import User
from catalog.models import Track
from consent.audit import FIGURE_BY_KEY, LedgerQuery
from consent.audit.figures import CLASSES
from consent.audit.timeline import DEFAULT_RANGE, RANGES
from consent.forms import USE_CHOICES
from consent.models import Source
from consent.partners.check import ISRC_PATTERN, compact_isrc


class RangeForm(forms.Form):
    days = forms.TypedChoiceField(
        label="Show",
        required=False,
        coerce=int,
        empty_value=DEFAULT_RANGE,
        choices=[(days, f"The last {days} days") for days in RANGES],
    )
    use = forms.ChoiceField(
        label="Use", required=False, choices=[("", "Every use"), *USE_CHOICES]
    )


class DrillDownForm(forms.Form):
    license_class = forms.ChoiceField(label="Licence class", choices=CLASSES)
    use = forms.ChoiceField(label="Use", choices=USE_CHOICES)
    figure = forms.ChoiceField(
        label="Figure",
        choices=[(key, figure.label) for key, figure in FIGURE_BY_KEY.items()],
    )
    after = forms.IntegerField(required=False, min_value=0)


class LedgerSearchForm(forms.Form):
    artist = forms.CharField(
        label="Artist",
        required=False,
        max_length=254,
        help_text="E-mail address or artist name, exactly.",
    )
    track = forms.CharField(
        label="Track",
        required=False,
        max_length=300,
        help_text="The track's public id (from its page address) or its exact title.",
    )
    isrc = forms.RegexField(
        label="ISRC",
        required=False,
        regex=ISRC_PATTERN,
        error_messages={
            "invalid": "An ISRC has 12 characters, like GB-AAA-24-00001 or "
            "GBAAA2400001."
        },
    )
    use = forms.ChoiceField(
        label="Use", required=False, choices=[("", "Any use"), *USE_CHOICES]
    )
    source = forms.ChoiceField(
        label="Source",
        required=False,
        choices=[("", "Any source"), *Source.choices],
    )
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    before = forms.IntegerField(required=False, min_value=1)

    def clean_artist(self) -> int | None:
        value = self.cleaned_data["artist"].strip()
        if not value:
            return None
        found = list(
            User.objects.filter(email__iexact=value).values_list("pk", flat=True)[:1]
        ) or list(
            User.objects.annotate(lowered=Lower("display_name"))
            .filter(lowered=value.lower())
            .values_list("pk", flat=True)[:2]
        )
        if not found:
            raise forms.ValidationError("No artist has that e-mail address or name.")
        if len(found) > 1:
            raise forms.ValidationError(
                "More than one artist has that name: use their e-mail address."
            )
        return found[0]

    def clean_track(self) -> int | None:
        value = self.cleaned_data["track"].strip()
        if not value:
            return None
        found = list(
            Track.objects.filter(public_id=value).values_list("pk", flat=True)[:1]
        ) or list(Track.objects.filter(title=value).values_list("pk", flat=True)[:2])
        if not found:
            raise forms.ValidationError("No track has that public id or title.")
        if len(found) > 1:
            raise forms.ValidationError(
                "More than one track has that title: use its public id "
                "(the end of its page's address)."
            )
        return found[0]

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        isrc = data.get("isrc")
        if isrc:
            track = list(
                Track.objects.filter(isrc=compact_isrc(isrc)).values_list(
                    "pk", flat=True
                )[:1]
            )
            if not track:
                self.add_error("isrc", "No track has that ISRC.")
            elif data.get("track") not in (None, track[0]):
                self.add_error("isrc", "That ISRC is another track's.")
            else:
                data["track"] = track[0]
        return data

    def query(self) -> LedgerQuery:
        data = self.cleaned_data
        return LedgerQuery(
            artist_id=data.get("artist"),
            track_id=data.get("track"),
            use=data.get("use") or "",
            source=data.get("source") or "",
            since=data.get("since"),
            until=data.get("until"),
        )
