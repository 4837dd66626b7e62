"""The staff forms of the partner pages (their own module, as the consumers').

The forms check the shape of what was typed; the rules (a free name, a
webhook no other partner has, the limits) are the services', whose
``KeyError_`` messages the views add to the form.
"""

from django import forms
from django.conf import settings
from django.db.models import QuerySet

from consent.models import Consumer
from consent.models.partners import DEFAULT_ACK_DAYS
from consent.partners.keys import MAX_RATE_LIMIT


class PartnerCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="The AI company, as artists will read it on their track pages.",
        error_messages={
            "required": "Give the partner a name.",
            "max_length": "A partner's name is at most 100 characters.",
        },
    )
    consumer = forms.ModelChoiceField(
        label="Webhook",
        queryset=Consumer.objects.none(),
        required=False,
        empty_label="None (no webhooks)",
        help_text="The partner webhook that sends this company each consent "
        "change, if it has one. A webhook belongs to one partner at most.",
        error_messages={
            "invalid_choice": "Choose one of the webhooks listed: the others "
            "belong to a partner already.",
        },
    )
    ack_days = forms.IntegerField(
        label="Acknowledgement deadline, in days",
        initial=DEFAULT_ACK_DAYS,
        min_value=1,
        max_value=365,
        help_text="How long the partner has to acknowledge each withdrawal "
        "(a use of a track no longer allowed): 1 to 365 days.",
        error_messages={
            "required": "Give the deadline: 1 to 365 days.",
            "invalid": "Give the deadline as a whole number of days, 1 to 365.",
            "min_value": "The deadline is at least 1 day.",
            "max_value": "The deadline is at most 365 days.",
        },
    )

    def __init__(self, *args, webhooks: QuerySet[Consumer], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["consumer"].queryset = webhooks


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What the key is for, e.g. “Nightly dataset check”.",
        error_messages={
            "required": "Give the key a name.",
            "max_length": "A key's name is at most 100 characters.",
        },
    )
    rate_limit = forms.IntegerField(
        label="Rate limit, requests per minute",
        required=False,
        min_value=1,
        max_value=MAX_RATE_LIMIT,
        error_messages={
            "invalid": "Give the rate limit as a whole number, or leave it empty.",
            "min_value": "The rate limit is at least 1 request per minute.",
            "max_value": f"The rate limit is at most {MAX_RATE_LIMIT:,} requests "
            "per minute.",
        },
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rate_limit"].help_text = (
            "Optional: left empty, the key gets the default of "
            f"{settings.REFRAIN_API_KEY_RATE_LIMIT:,}."
        )
