"""The staff forms of the consumer pages (their own module: consent/forms.py
belongs to the artists' pages).

The forms check only the shape of what was typed; the rules (a valid, public
URL, a free name, known uses) are the services', whose ``ConsumerError``
messages the views add to the form.
"""

from datetime import datetime, time

from django import forms
from django.utils import timezone

from consent.forms import USE_CHOICES


class ConsumerCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="How staff will recognise it, e.g. the partner's company.",
        error_messages={"required": "Give the consumer a name."},
    )
    url = forms.CharField(
        label="Webhook URL",
        max_length=500,
        help_text="Where Refrain sends signed POST requests, e.g. "
        "https://partner.example/refrain-webhook",
        widget=forms.URLInput(attrs={"inputmode": "url", "spellcheck": "false"}),
        error_messages={"required": "Give the URL Refrain should send to."},
    )
    uses = forms.MultipleChoiceField(
        label="Uses it receives",
        choices=USE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Choose at least one use.",
            "invalid_choice": "Choose from the uses listed.",
        },
    )


class ConsumerReplayForm(forms.Form):
    since = forms.DateField(
        label="Changed since",
        required=False,
        input_formats=["%Y-%m-%d"],
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Leave empty to send every track again.",
        error_messages={"invalid": "Enter a real date, as YYYY-MM-DD."},
    )

    def clean_since(self):
        since = self.cleaned_data["since"]
        if since is not None and since > timezone.localdate():
            raise forms.ValidationError("The date is in the future.")
        return since

    def since_start(self) -> datetime | None:
        """The start of the chosen day, in the site's time zone."""
        since = self.cleaned_data["since"]
        if since is None:
            return None
        return timezone.make_aware(datetime.combine(since, time.min))
