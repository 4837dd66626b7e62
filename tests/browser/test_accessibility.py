"""WCAG 2.2 AA in a real browser (issue 15): every page each role can open,
at desktop and phone width, checked by axe-core (vendored in
axe-playwright-python: no network at run time) for the WCAG 2.0, 2.1 and 2.2
A and AA rules. A serious or critical finding fails the role's test, and so
does an ``aria-describedby`` or ``aria-labelledby`` naming an id the page
does not have. Each test prints every finding (page, width, rule, element,
what is wrong) before it fails, so one run shows them all.

Each role signs in once, through the sign-in page (staff with their
authenticator app, allauth's clock pinned). Every page is shot full length at
both widths into ``tests/artifacts/a11y-<role>-<page>-<desktop|phone>.png``
for review: the page is loaded once and the viewport resized (the server
sends the same markup to both; the site has no script that reads the width).

JSON, CSV, text and audio endpoints are skipped, and so are the Django admin
and the API's Swagger UI, whose markup is not the site's, and the HTMX
fragments (a track's propagation, a bulk change's progress, a policy run),
which are checked inside the pages that load them. Not reached either: the
pages of allauth that need state these roles do not have (a security key to
list or rename, an account without a password, closed sign-up)."""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from allauth.account.forms import default_token_generator
from allauth.account.models import EmailAddress, EmailConfirmationHMAC
from allauth.account.utils import user_pk_to_url_str
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from axe_playwright_python.base import AXE_SCRIPT
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from accounts.services import GROUP_AUDITORS, GROUP_POLICY_ADMINS
from catalog.models import Track
from consent.audit import audit_figures_refresh
from consent.models import ApiKey, Consumer
from consent.partners import apikey_create, partner_create
from consent.services import bulk_change_start, consent_set, trackconsent_create_missing
from consent.uses import Use
from tests.consent.audio_helpers import audio_track
from tests.factories import TEST_PASSWORD, StaffFactory, TrackFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    # pytest-playwright's stand-in for pytest-base-url defines a session fixture
    # as an instance method, which pytest 9 deprecates; not ours to fix.
    pytest.mark.filterwarnings(
        "ignore:Session-scoped fixtures defined as instance methods"
        ":pytest.PytestRemovedIn10Warning"
    ),
]

WIDTHS = {
    "desktop": {"width": 1280, "height": 800},
    "phone": {"width": 390, "height": 844},
}
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"],
    },
    "resultTypes": ["violations"],
}
BLOCKING = {"serious", "critical"}
# Every id an ARIA reference names, that the document does not have.
MISSING_REFERENCES = """() => {
  const missing = [];
  for (const attr of ["aria-describedby", "aria-labelledby"]) {
    for (const el of document.querySelectorAll(`[${attr}]`)) {
      for (const id of el.getAttribute(attr).split(/\\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) {
          const name = el.id ? `#${el.id}` : el.name ? `[name=${el.name}]` : "";
          missing.push(`${el.tagName.toLowerCase()}${name} ${attr}="${id}"`);
        }
      }
    }
  }
  return missing;
}"""

INDIE = "indie@example.com"
SIGNED = "signed@example.com"
AUDITOR = "auditor@example.com"
ADMIN = "policy@example.com"
FORGETFUL = "forgetful@example.com"
EMAIL_LABEL = re.compile(r"^e-?mail:?$", re.IGNORECASE)
PASSWORD_LABEL = re.compile(r"^password:?$", re.IGNORECASE)
CODE_LABEL = re.compile(r"^(authenticator )?code:?$", re.IGNORECASE)
SIGN_IN = "Sign in"
GENAI = Use.GENAI_TRAINING.value
MINING = Use.DATA_MINING.value


@dataclass
class Finding:
    page: str
    width: str
    rule: str
    impact: str
    target: str
    summary: str

    def __str__(self) -> str:
        return (
            f"{self.page} [{self.width}] {self.rule} ({self.impact}) "
            f"at {self.target}: {self.summary}"
        )


class Checker:
    """Loads pages for one role, checks and shoots each at both widths."""

    def __init__(self, page: Page, base: str, role: str, artifacts_dir) -> None:
        self.page = page
        self.base = base
        self.role = role
        self.artifacts_dir = artifacts_dir
        self.findings: list[Finding] = []
        self.checked: list[str] = []

    def visit(
        self, name: str, path: str, *, status: int = 200, lands: str = ""
    ) -> None:
        """Open ``path`` and check it; it must answer ``status`` at ``lands``
        (default: ``path`` itself, without its query)."""
        self.page.set_viewport_size(WIDTHS["desktop"])
        response = self.page.goto(f"{self.base}{path}")
        assert response is not None, path
        landed = urlsplit(self.page.url).path
        wanted = lands or urlsplit(path).path
        assert (response.status, landed) == (status, wanted), (
            f"{self.role} {name}: {path} answered {response.status} at {landed}, "
            f"not {status} at {wanted}"
        )
        self.check(name)

    def check(self, name: str) -> None:
        """Check the page as it is now, at both widths, and shoot it."""
        self.checked.append(name)
        self.page.wait_for_load_state("load")
        for width, viewport in WIDTHS.items():
            self.page.set_viewport_size(viewport)
            self._axe(name, width)
            self.page.screenshot(
                path=self.artifacts_dir / f"a11y-{self.role}-{name}-{width}.png",
                full_page=True,
            )
        self.page.set_viewport_size(WIDTHS["desktop"])

    def _axe(self, name: str, width: str) -> None:
        if not self.page.evaluate("typeof window.axe === 'object'"):
            self.page.evaluate(AXE_SCRIPT)
        results = self.page.evaluate(
            "options => axe.run(document, options)", AXE_OPTIONS
        )
        for violation in results["violations"]:
            if violation["impact"] not in BLOCKING:
                continue
            for node in violation["nodes"]:
                self.findings.append(
                    Finding(
                        page=name,
                        width=width,
                        rule=violation["id"],
                        impact=violation["impact"],
                        target=" ".join(str(t) for t in node["target"]),
                        summary=(node.get("failureSummary") or violation["help"])
                        .replace("\n", " ")
                        .strip(),
                    )
                )
        for missing in self.page.evaluate(MISSING_REFERENCES):
            self.findings.append(
                Finding(
                    page=name,
                    width=width,
                    rule="aria-reference",
                    impact="serious",
                    target=missing,
                    summary="names an id that is not in the page",
                )
            )


# --- The catalogue --------------------------------------------------------


def _make_track(**kwargs) -> Track:
    """A track with its consent rows, as every real write makes it."""
    track = TrackFactory(**kwargs)
    trackconsent_create_missing(track_ids=[track.pk])
    track.refresh_from_db()
    return track


@dataclass
class World:
    indie_track: Track
    indie_audio: Track
    signed_track: Track
    bulk: dict
    consumer: Consumer
    partner_id: int


def _world() -> World:
    """An independent artist with answered tracks (one with audio), a
    label-signed one, a webhook consumer, an AI partner with a key, a bulk
    change each, and the audit's figures computed as the worker would."""
    indie = UserFactory(email=INDIE, display_name="Ines Indie")
    tracks = []
    for title, answers in {
        "Morning Tide": {GENAI: "granted"},
        "Glass Harbour": {GENAI: "denied"},
        "Low Orbit": {MINING: "denied"},
        "Paper Lanterns": {},
    }.items():
        track = _make_track(artist=indie, title=title)
        for use, state in answers.items():
            consent_set(track=track, use=use, state=state, actor=indie, source="web")
        tracks.append(track)
    with_audio = audio_track("mp3", artist=indie, title="Salt Road")
    signed = UserFactory(email=SIGNED, display_name="Sia Signed")
    signed_tracks = [
        _make_track(artist=signed, title=title, signed=True)
        for title in ("Signed Anthem", "Signed Ballad")
    ]
    bulk = {
        artist.email: bulk_change_start(
            artist=artist,
            use=MINING,
            state="denied",
            actor=artist,
            track_public_ids=[t.public_id for t in artist_tracks],
        ).public_id
        for artist, artist_tracks in ((indie, tracks), (signed, signed_tracks))
    }
    consumer = Consumer.objects.create(
        name="Partner Lab",
        kind=Consumer.Kind.WEBHOOK,
        url="https://93.184.215.14/refrain",
        uses=[GENAI],
        secret="whsec_" + "A" * 43 + "=",
    )
    partner = partner_create(name="Acme AI", consumer=consumer, ack_days=30)
    apikey_create(name="Acme production", scope=ApiKey.Scope.PARTNER, partner=partner)
    apikey_create(name="Catalogue feed", scope=ApiKey.Scope.CATALOG)
    audit_figures_refresh(triggered_by="test")
    return World(
        indie_track=tracks[0],
        indie_audio=with_audio,
        signed_track=signed_tracks[0],
        bulk=bulk,
        consumer=consumer,
        partner_id=partner.pk,
    )


def _staff(email: str, group: str) -> str:
    """Staff in ``group`` with an authenticator app and recovery codes;
    returns the app's secret."""
    user = StaffFactory(email=email, display_name=group.title())
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    RecoveryCodes.activate(user)
    return secret


# --- Pages ------------------------------------------------------------------


def _sign_in(checker: Checker, email: str, *, code: str = "") -> None:
    """Through the sign-in page (checked on the way: empty, then the second
    factor's page for staff)."""
    page = checker.page
    page.goto(f"{checker.base}/accounts/login/")
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(TEST_PASSWORD)
    # exact: "Sign in with a passkey" is a button too
    page.get_by_role("button", name=SIGN_IN, exact=True).click()
    if code:
        expect(page).to_have_url(re.compile(r"/accounts/2fa/authenticate/$"))
        checker.check("mfa-authenticate")
        page.get_by_label(CODE_LABEL).fill(code)
        page.get_by_role("button", name=SIGN_IN, exact=True).click()
    expect(page).to_have_url(f"{checker.base}/tracks/")


def _reauthenticate(checker: Checker, path: str, name: str) -> None:
    """Open a page that asks for the password again first: check that
    question, answer it, check the page."""
    page = checker.page
    page.goto(f"{checker.base}{path}")
    expect(page).to_have_url(re.compile(r"/accounts/reauthenticate/"))
    checker.check("reauthenticate")
    page.get_by_label(PASSWORD_LABEL).fill(TEST_PASSWORD)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page).to_have_url(f"{checker.base}{path}")
    checker.check(name)


def _public_pages(checker: Checker, world: World) -> None:
    """The pages anyone opens (the home page sends whoever is signed in to
    their tracks)."""
    checker.visit("policy", "/policy/")
    checker.visit("transparency", "/transparency/")
    checker.visit("public-track", f"/t/{world.indie_track.public_id}/")
    checker.visit("public-track-label", f"/t/{world.signed_track.public_id}/")
    checker.visit("not-found", "/no-such-page/", status=404)


def _anonymous(checker: Checker, world: World) -> None:
    checker.visit("home", "/")
    _public_pages(checker, world)
    page = checker.page
    checker.visit("sign-in", "/accounts/login/")
    page.get_by_label(EMAIL_LABEL).fill(INDIE)
    page.get_by_label(PASSWORD_LABEL).fill("not-the-password")
    page.get_by_role("button", name=SIGN_IN, exact=True).click()
    expect(page.locator(".errorlist").first).to_be_visible()
    checker.check("sign-in-errors")

    checker.visit("sign-up", "/accounts/signup/")
    page.get_by_label(EMAIL_LABEL).fill("new@example.com")
    page.get_by_label(PASSWORD_LABEL).fill("short")
    page.get_by_label(re.compile(r"^password \(again\):?$", re.I)).fill("short")
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page.locator(".errorlist").first).to_be_visible()
    checker.check("sign-up-errors")

    checker.visit("password-reset", "/accounts/password/reset/")
    checker.visit("password-reset-sent", "/accounts/password/reset/done/")
    forgetful = UserFactory(email=FORGETFUL)
    uid = user_pk_to_url_str(forgetful)
    key = default_token_generator.make_token(forgetful)
    checker.visit(
        "password-reset-new",
        f"/accounts/password/reset/key/{uid}-{key}/",
        lands=f"/accounts/password/reset/key/{uid}-set-password/",
    )
    checker.visit("password-reset-bad-link", "/accounts/password/reset/key/1-bad/")
    checker.visit("password-reset-changed", "/accounts/password/reset/key/done/")
    checker.visit("verification-sent", "/accounts/confirm-email/")
    unconfirmed = EmailAddress.objects.create(
        user=forgetful, email="second@example.com", verified=False, primary=False
    )
    checker.visit(
        "confirm-email",
        f"/accounts/confirm-email/{EmailConfirmationHMAC(unconfirmed).key}/",
    )
    checker.visit("confirm-email-bad-link", "/accounts/confirm-email/bad-key/")
    checker.visit("account-inactive", "/accounts/inactive/")

    # last: asking for a code leaves the browser half-way through signing in
    checker.visit("sign-in-code", "/accounts/login/code/")
    page.get_by_label(EMAIL_LABEL).fill(INDIE)
    page.get_by_role("button", name="E-mail me a code").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/code/confirm/$"))
    checker.check("sign-in-code-confirm")


def _account_pages(checker: Checker, *, staff: bool) -> None:
    """What every signed-in account has: settings, e-mail, password, 2FA."""
    checker.visit("settings", "/settings/")
    checker.visit("settings-consent", "/settings/consent/")
    checker.visit("settings-profile", "/settings/profile/")
    checker.visit("settings-tokens", "/settings/tokens/")
    checker.visit("email", "/accounts/email/")
    checker.visit("password-change", "/accounts/password/change/")
    checker.visit("mfa", "/accounts/2fa/")
    if staff:
        _reauthenticate(checker, "/accounts/2fa/totp/deactivate/", "mfa-totp-off")
        checker.visit("mfa-recovery-codes", "/accounts/2fa/recovery-codes/")
        checker.visit(
            "mfa-recovery-codes-new", "/accounts/2fa/recovery-codes/generate/"
        )
    else:
        _reauthenticate(checker, "/accounts/2fa/totp/activate/", "mfa-totp-on")
    checker.visit("mfa-security-key", "/accounts/2fa/webauthn/add/")
    checker.visit("sign-out", "/accounts/logout/")


def _artist(checker: Checker, world: World, email: str, track: Track) -> None:
    _sign_in(checker, email)
    checker.visit("tracks", "/tracks/")
    checker.visit("track", f"/tracks/{track.public_id}/")
    if email == INDIE:
        checker.visit("track-with-audio", f"/tracks/{world.indie_audio.public_id}/")
        checker.visit(
            "download-pending",
            f"/tracks/{world.indie_audio.public_id}/download/",
            status=202,
        )
    checker.visit("upload", "/tracks/upload/")
    checker.visit("bulk-status", f"/tracks/bulk/{world.bulk[email]}/")
    _account_pages(checker, staff=False)
    checker.visit("refused", "/audit/", status=403)
    _public_pages(checker, world)


def _staff_pages(checker: Checker, world: World, *, manages: bool) -> None:
    checker.visit("tracks", "/tracks/")
    checker.visit("audit", "/audit/")
    checker.visit(
        "audit-tracks",
        f"/audit/tracks/?license_class=independent&use={GENAI}&figure=no_answer",
    )
    checker.visit("audit-ledger", "/audit/ledger/")
    checker.visit("audit-ledger-search", f"/audit/ledger/?artist={INDIE}")
    checker.visit("audit-how", "/audit/how/")
    checker.visit("consumers", "/audit/consumers/")
    checker.visit("consumer", f"/audit/consumers/{world.consumer.pk}/")
    checker.visit("partners", "/audit/partners/")
    checker.visit("partner", f"/audit/partners/{world.partner_id}/")
    checker.visit("demo-receiver", "/demo/webhook/")
    if manages:
        page = checker.page
        checker.visit("policy-edit", "/audit/policy/")
        checker.visit("consumer-new", "/audit/consumers/new/")
        checker.visit("partner-new", "/audit/partners/new/")
        page.goto(f"{checker.base}/audit/partners/{world.partner_id}/")
        page.get_by_role("button", name="Create the key").first.click()
        expect(page.locator(".errorlist, .form-errors").first).to_be_visible()
        checker.check("partner-key-errors")
        page.goto(f"{checker.base}/audit/consumers/{world.consumer.pk}/")
        page.get_by_role("button", name="Rotate the secret").click()
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        checker.check("consumer-secret")
    _account_pages(checker, staff=True)
    _public_pages(checker, world)


ROLES = ["anonymous", "independent", "label", "auditor", "policy-admin"]


@pytest.mark.parametrize("role", ROLES)
def test_every_page_has_no_serious_accessibility_finding(
    role, page, live_server, artifacts_dir, totp_code, settings
):
    # given the catalogue, and the demo receiver on (the staff see its page)
    settings.REFRAIN_DEMO_RECEIVER = True
    world = _world()
    checker = Checker(page, live_server.url, role, artifacts_dir)

    # when the role opens every page it can, signed in through the UI once
    if role == "anonymous":
        _anonymous(checker, world)
    elif role == "independent":
        _artist(checker, world, INDIE, world.indie_track)
    elif role == "label":
        _artist(checker, world, SIGNED, world.signed_track)
    else:
        manages = role == "policy-admin"
        email = ADMIN if manages else AUDITOR
        secret = _staff(email, GROUP_POLICY_ADMINS if manages else GROUP_AUDITORS)
        _sign_in(checker, email, code=totp_code(secret))
        _staff_pages(checker, world, manages=manages)

    # then axe finds nothing serious or critical on any of them, at either
    # width, and every ARIA reference names an element of the page
    for finding in checker.findings:
        print(finding)
    print(f"{role}: {len(checker.checked)} pages checked: {', '.join(checker.checked)}")
    assert checker.findings == [], (
        f"{len(checker.findings)} findings for {role}:\n"
        + "\n".join(str(f) for f in checker.findings)
    )
