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
        if any(ord(ch) < 32 for ch in value):
            raise forms.ValidationError(
                "The artist name cannot contain control characters."
            )
        return value
