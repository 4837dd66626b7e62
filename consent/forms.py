from django import forms
from django.conf import settings

from catalog.forms import TrackFilterForm
from catalog.models import LicenseClass
from consent.models import Decision, ReceiptEmails, Rule, State
from consent.policy import Policy, unset_default_words
from consent.selectors import ACK_OVERDUE, ConsentFilters
from consent.uses import USE_ORDER, USES

USE_CHOICES = [(use, USES[use].name) for use in USE_ORDER]


_SWITCH_USES = frozenset(USE_ORDER)
_SWITCH_STATES = frozenset(State.values)


def switch_parse(use: str, state: str) -> tuple[str, str] | None:
    """A switch's use and state, or ``None`` when either is not one we know.

    The busiest request of the product posts just these two choices, so they
    are checked against the choices directly rather than through a ``Form``
    (whose per-request copy of its fields costs more than the check).
    """
    if use in _SWITCH_USES and state in _SWITCH_STATES:
        return use, state
    return None


ACK_CHOICES = [("", "Any"), (ACK_OVERDUE, "Acknowledgement overdue")]


class TrackListForm(TrackFilterForm):
    """The list's filters: the catalogue's plus consent (use, state, eligible)
    and the AI companies' acknowledgements (ack)."""

    use = forms.ChoiceField(
        label="Use", required=False, choices=[("", "Any use"), *USE_CHOICES]
    )
    state = forms.ChoiceField(
        label="Your answer",
        required=False,
        choices=[
            ("", "Any answer"),
            (State.GRANTED, "Yes"),
            (State.DENIED, "No"),
            (State.DEFAULT, "On default"),
        ],
    )
    eligible = forms.ChoiceField(
        label="Eligible",
        required=False,
        choices=[("", "Eligible or not"), ("yes", "Eligible"), ("no", "Not eligible")],
    )
    ack = forms.ChoiceField(label="AI companies", required=False, choices=ACK_CHOICES)

    def clean(self):
        data = super().clean()
        if data.get("state") and not data.get("use"):
            self.add_error("state", "Choose the use this answer is about.")
        return data

    def consent_filters(self) -> ConsentFilters:
        # Like ``filters()``: drop only the invalid field (a state without a
        # use must not also lose ``eligible``, nor a stale cursor every filter).
        self.is_valid()
        data = self.cleaned_data
        return ConsentFilters(
            use=data.get("use", ""),
            state=data.get("state", "") if data.get("use") else "",
            eligible=data.get("eligible", ""),
            ack=data.get("ack", ""),
        )


class BulkChangeForm(forms.Form):
    use = forms.ChoiceField(label="Use", choices=USE_CHOICES)
    state = forms.ChoiceField(
        label="Set to",
        choices=[
            (Decision.GRANTED, "Yes"),
            (Decision.DENIED, "No"),
            (State.DEFAULT, "My default"),
        ],
    )
    scope = forms.ChoiceField(
        choices=[("selected", "Selected tracks"), ("all", "All matching tracks")],
        initial="selected",
    )
    tracks = forms.MultipleChoiceField(required=False, choices=())
    # The list's filters, carried along for "all that match".
    q = forms.CharField(required=False, max_length=200)
    license = forms.ChoiceField(
        required=False, choices=[("", ""), *LicenseClass.choices]
    )
    f_use = forms.ChoiceField(required=False, choices=[("", ""), *USE_CHOICES])
    f_state = forms.ChoiceField(required=False, choices=[("", ""), *State.choices])
    f_eligible = forms.ChoiceField(
        required=False, choices=[("", ""), ("yes", "yes"), ("no", "no")]
    )
    f_ack = forms.ChoiceField(required=False, choices=ACK_CHOICES)
    next = forms.CharField(required=False, max_length=2000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Public ids are checked against the artist's tracks by the service.
        self.fields["tracks"].choices = (
            [(value, value) for value in self.data.getlist("tracks")]
            if hasattr(self.data, "getlist")
            else []
        )

    def clean(self):
        data = super().clean()
        if data.get("scope") == "selected" and not data.get("tracks"):
            raise forms.ValidationError(
                "Choose at least one track, or choose “All matching tracks”."
            )
        return data

    def filters(self) -> dict:
        data = self.cleaned_data
        return {
            "q": data.get("q", ""),
            "license": data.get("license", ""),
            "use": data.get("f_use", ""),
            "state": data.get("f_state", ""),
            "eligible": data.get("f_eligible", ""),
            "ack": data.get("f_ack", ""),
        }


class DefaultsForm(forms.Form):
    apply_to_existing = forms.BooleanField(
        required=False,
        initial=True,
        label="Also change the tracks that are still on default",
        help_text="Unticked, those tracks keep the answer they have now, and the "
        "new default applies only to tracks you upload from now on.",
    )

    def __init__(
        self,
        *args,
        defaults: dict[str, str | None],
        policy: Policy,
        classes: list[str] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        for use in USE_ORDER:
            self.fields[use] = forms.ChoiceField(
                label=USES[use].description,
                choices=[
                    (Decision.GRANTED, "Yes"),
                    (Decision.DENIED, "No"),
                    ("", unset_default_words(policy, use, classes)),
                ],
                widget=forms.RadioSelect,
                required=False,
                initial=defaults.get(use) or "",
            )
        self.order_fields([*USE_ORDER, "apply_to_existing"])

    def defaults(self) -> dict[str, str]:
        """Per use: ``granted``, ``denied``, or ``""`` for "not set"."""
        return {use: self.cleaned_data.get(use) or "" for use in USE_ORDER}


def receipt_email_choices() -> list[tuple[str, str]]:
    """The three choices in the artist's words (the daily hour from settings)."""
    hour = settings.REFRAIN_RECEIPT_DAILY_HOUR
    return [
        (
            ReceiptEmails.EACH,
            "After each change: changes you make within a few minutes of each "
            "other come in one e-mail",
        ),
        (
            ReceiptEmails.DAILY,
            f"Once a day: one e-mail soon after {hour:02d}:00 UTC with the day's "
            "changes",
        ),
        (
            ReceiptEmails.NONE,
            "Never: no receipt e-mails (your receipts stay on your track pages)",
        ),
    ]


class ReceiptEmailsForm(forms.Form):
    receipt_emails = forms.ChoiceField(
        label="E-mail me my receipts",
        widget=forms.RadioSelect,
        help_text="Every change you make to your consent gets a receipt, a "
        "record you can keep. Whatever you choose here, each receipt stays "
        "on its track's page to download, and you are still e-mailed when a "
        "change of the platform's policy affects your tracks.",
        error_messages={
            "required": "Choose when to get your receipts by e-mail.",
            "invalid_choice": "That is not one of these choices, so nothing "
            "was changed. Choose after each change, once a day, or never.",
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["receipt_emails"].choices = receipt_email_choices()


class PolicyForm(forms.Form):
    reason = forms.CharField(
        label="Why the policy changes (artists read this)",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
    )

    def __init__(self, *args, current: dict[tuple[str, str], str], **kwargs):
        super().__init__(*args, **kwargs)
        for license_class, class_name in LicenseClass.choices:
            for use in USE_ORDER:
                self.fields[f"{license_class}__{use}"] = forms.ChoiceField(
                    label=f"{class_name}: {USES[use].name}",
                    choices=Rule.choices,
                    initial=current.get((license_class, use)),
                )

    def rules(self) -> dict[tuple[str, str], str]:
        return {
            tuple(name.split("__", 1)): value
            for name, value in self.cleaned_data.items()
            if "__" in name
        }
