"""The receipt e-mails part of ``/settings/consent/`` (the page is
``consent.views.tracks.consent_settings``): its form and what saving says."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from accounts.models import User
from consent import services
from consent.forms import ReceiptEmailsForm
from consent.models import ReceiptEmails
from consent.selectors import receipt_emails_for_artist

# The form each <form> of the page posts, in its hidden "section" field.
SECTION_DEFAULTS = "defaults"
SECTION_RECEIPT_EMAILS = "receipt-emails"

SAVED = {
    ReceiptEmails.EACH: "You get an e-mail after each change; changes you make "
    "within a few minutes of each other come in one.",
    ReceiptEmails.DAILY: "You get one e-mail a day with that day's receipts.",
    ReceiptEmails.NONE: "You get no receipt e-mails; your receipts stay on your "
    "track pages.",
}


def receipt_emails_form(artist: User, data=None) -> ReceiptEmailsForm:
    """The form, bound to a post, or showing the artist's choice."""
    if data is not None:
        return ReceiptEmailsForm(data)
    return ReceiptEmailsForm(
        initial={"receipt_emails": receipt_emails_for_artist(artist=artist)}
    )


def receipt_emails_saved(request: HttpRequest, form: ReceiptEmailsForm) -> HttpResponse:
    """Save a valid form's choice and say what it means."""
    frequency = form.cleaned_data["receipt_emails"]
    try:
        changed = services.receipt_emails_set(artist=request.user, frequency=frequency)
    except services.ConsentError as error:
        messages.error(request, str(error))
        return redirect("consent_settings")
    if changed:
        messages.success(request, f"Saved. {SAVED[frequency]}")
    else:
        messages.info(request, "Nothing changed.")
    return redirect("consent_settings")
