"""The account pages (allauth's) in the site's words and markup (issue 15):
headings, buttons, labels and titles in sentence case ("Sign in", not "Sign
In"), from the site's English catalogue in locale/en; and every
``aria-describedby`` names a help text or an error that is in the page.

The browser test (tests/browser/test_accessibility.py) checks the same pages
with axe; these run in a second without a browser."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.translation import gettext, override

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "en" / "LC_MESSAGES" / "django.po"
ENTRY = re.compile(r'^msgid "(.+)"\nmsgstr "(.*)"$', re.MULTILINE)
# Words that keep their capital after the first: the site's name, acronyms
# (all capitals, checked apart) and the separator of the page title.
PROPER = {"Refrain"}
NAMED = {"h1", "h2", "h3", "button", "label", "legend", "summary", "title"}

ANONYMOUS_PAGES = [
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
    "/accounts/password/reset/key/1-bad/",
    "/accounts/password/reset/key/done/",
    "/accounts/confirm-email/",
    "/accounts/confirm-email/bad-key/",
    "/accounts/inactive/",
    "/accounts/login/code/",
]
SIGNED_IN_PAGES = [
    "/accounts/email/",
    "/accounts/password/change/",
    "/accounts/2fa/",
    "/accounts/reauthenticate/",
    "/accounts/logout/",
    "/settings/profile/",
    "/settings/tokens/",
]


class Page(HTMLParser):
    """The texts of headings, buttons, labels and the title; every id; every
    id an ``aria-describedby`` names."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[list] = []
        self.texts: list[tuple[str, str]] = []
        self.ids: set[str] = set()
        self.described_by: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for ref in (attrs.get("aria-describedby") or "").split():
            self.described_by.append((f"{tag}#{attrs.get('id', '')}", ref))
        classes = (attrs.get("class") or "").split()
        if tag in NAMED or (tag == "a" and "button" in classes):
            self.open.append([tag, ""])

    def handle_endtag(self, tag):
        if self.open and self.open[-1][0] == tag:
            name, text = self.open.pop()
            self.texts.append((name, " ".join(text.split())))

    def handle_data(self, data):
        for item in self.open:
            item[1] += data


def _parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


def _title_case_words(text: str) -> list[str]:
    """The words after the first of a sentence that have a capital they
    should not (a name, an acronym or an address may)."""
    wrong = []
    for sentence in re.split(r"[.?!·:]\s+", text):
        for word in sentence.split()[1:]:
            bare = word.strip("()“”\"'.,;")
            if (
                bare[:1].isupper()
                and bare not in PROPER
                and not bare.isupper()
                and "@" not in bare
            ):
                wrong.append(bare)
    return wrong


def test_the_compiled_catalogue_is_the_source_and_changes_only_case():
    # given the site's English catalogue (its source; django.mo beside it)
    entries = ENTRY.findall(CATALOGUE.read_text(encoding="utf-8"))
    assert len(entries) > 40

    # then each entry is in force (django.mo was compiled after the last
    # change of django.po) and is a sentence-case version of allauth's words
    with override("en"):
        for msgid, msgstr in entries:
            assert gettext(msgid) == msgstr, f"{msgid!r}: run compilemessages"
            assert _title_case_words(msgstr) == [], msgstr


def _check(client, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    page = _parse(response.content.decode())
    problems = [
        f"{path}: <{tag}> “{text}” is not in sentence case"
        for tag, text in page.texts
        if _title_case_words(text)
    ]
    problems += [
        f"{path}: {element} aria-describedby names #{ref}, which is not in the page"
        for element, ref in page.described_by
        if ref not in page.ids
    ]
    return problems


def test_the_account_pages_are_in_sentence_case_and_describe_with_what_is_there(
    client,
):
    # given a visitor, then a signed-in artist
    problems = []
    for path in ANONYMOUS_PAGES:
        problems += _check(client, path)
    client.force_login(UserFactory())
    for path in SIGNED_IN_PAGES:
        problems += _check(client, path)

    # then no heading, button, label or title is in Title Case, and every
    # description a control names is in its page
    assert problems == []


def test_the_sign_in_page_speaks_the_site_s_words(client):
    # when someone opens the sign-in page and gets a password wrong
    response = client.post(
        "/accounts/login/", {"login": "nobody@example.com", "password": "wrong"}
    )
    page = _parse(response.content.decode())

    # then its button and labels are the site's, and the error is an alert
    assert ("button", "Sign in") in page.texts
    assert ("label", "Remember me") in page.texts
    assert ("label", "Password") in page.texts
    html = response.content.decode()
    assert re.search(r'<div class="form-errors" role="alert">\s*<ul', html)
