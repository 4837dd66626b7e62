import unicodedata

from django import forms


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        label="Artist name",
        max_length=120,
        required=False,
        help_text="The name shown on your tracks and consent receipts. "
        "Leave empty to use the first part of your e-mail address.",
    )

    def clean_display_name(self) -> str:
        value = self.cleaned_data["display_name"].strip()
        # "Cc" covers C0 (below 32), DEL and the C1 range (0x80-0x9f): all of them
        # can rewrite a terminal or a log line, not only the ones below 32.
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise forms.ValidationError(
                "The artist name cannot contain control characters."
            )
        return value


class TokenCreateForm(forms.Form):
    name = forms.CharField(
        label="Token name",
        max_length=100,
        help_text="What the token is for, e.g. “release script on my laptop”.",
    )

    def clean_name(self) -> str:
        value = self.cleaned_data["name"].strip()
        if any(unicodedata.category(ch) == "Cc" for ch in value):
            raise forms.ValidationError(
                "The token name cannot contain control characters."
            )
        return value
