"""The transparency audit in a real browser (issue 14): an auditor signs in
with both factors, reads the parity finding, opens the tracks behind a number
and exports them, searches the ledger for an artist and exports that; an
artist is refused the audit with the site's 403 page; anyone reads the public
transparency page, which names no track and no artist.

Every page is shot full length at desktop and phone width into
``tests/artifacts/audit-*.png``. Controls are found by role and accessible
name, as in the other journeys; the ``page`` fixture fails any test on whose
pages the browser blocked something under the Content-Security-Policy."""

import csv
import re

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.contrib.auth.models import Group
from playwright.sync_api import Download, Page, expect

from accounts.services import GROUP_AUDITORS
from catalog.models import Track
from consent.audit import DRILL_DOWN_COLUMNS, LEDGER_COLUMNS, audit_figures_refresh
from consent.models import LedgerEntry
from consent.services import consent_set, trackconsent_create_missing
from consent.uses import USES, Use
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

AUDITOR = "auditor@example.com"
INDIE = "indie@example.com"
EMAIL_LABEL = re.compile(r"^e-?mail:?$", re.IGNORECASE)
PASSWORD_LABEL = re.compile(r"^password:?$", re.IGNORECASE)
CODE_LABEL = re.compile(r"^(authenticator )?code:?$", re.IGNORECASE)
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = {"desktop": DESKTOP, "phone": {"width": 390, "height": 844}}
GENAI = Use.GENAI_TRAINING.value
MINING = Use.DATA_MINING.value
PARITY = (
    "Independent and label-licensed content are treated differently for 4 of 4 uses:"
)
# The indie artist's tracks, and their answers; the rest have none.
INDIE_ANSWERS = {
    "Morning Tide": {GENAI: "granted"},
    "Glass Harbour": {GENAI: "denied"},
    "Low Orbit": {MINING: "denied"},
    "Paper Lanterns": {},
    "Salt Road": {},
}
# Generative AI training, independent, no answer: the indie tracks without
# one for that use (another artist's track has a yes; label tracks are another
# class).
GENAI_NO_ANSWER = ["Low Orbit", "Paper Lanterns", "Salt Road"]
OTHER_TITLE = "Borrowed Light"
SIGNED_TITLES = ["Signed Anthem", "Signed Ballad"]


def _make_track(**kwargs) -> Track:
    """A track with its consent rows, as every real write makes it (the
    ``make_track`` fixture of tests/consent/conftest.py, which this directory
    cannot use)."""
    track = TrackFactory(**kwargs)
    trackconsent_create_missing(track_ids=[track.pk])
    track.refresh_from_db()
    return track


def _catalogue() -> dict:
    """Five tracks of the indie artist, some answered; one of another
    independent artist (a yes); two label-licensed tracks; then the figures,
    computed as the worker would."""
    indie = UserFactory(email=INDIE, display_name="Ines Indie")
    for title, answers in INDIE_ANSWERS.items():
        track = _make_track(artist=indie, title=title)
        for use, state in answers.items():
            consent_set(track=track, use=use, state=state, actor=indie, source="web")
    other = UserFactory(email="other@example.com", display_name="Otto Other")
    borrowed = _make_track(artist=other, title=OTHER_TITLE)
    consent_set(track=borrowed, use=GENAI, state="granted", actor=other, source="web")
    signed = UserFactory(email="signed@example.com", display_name="Sia Signed")
    for title in SIGNED_TITLES:
        _make_track(artist=signed, title=title, signed=True)
    audit_figures_refresh(triggered_by="test")
    return {"indie": indie}


def _auditor() -> str:
    """auditor@example.com: staff, an auditor, with an authenticator app
    (staff pages ask for a second factor). Returns the app's secret."""
    auditor = StaffFactory(email=AUDITOR, display_name="Ada Auditor")
    auditor.groups.add(Group.objects.get_or_create(name=GROUP_AUDITORS)[0])
    secret = generate_totp_secret()
    TOTP.activate(auditor, secret)
    return secret


def _sign_in(page: Page, base_url: str, email: str, *, code: str = "") -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(TEST_PASSWORD)
    # exact: "Sign in with a passkey" is a button too
    page.get_by_role("button", name="Sign in", exact=True).click()
    if code:
        page.get_by_label(CODE_LABEL).fill(code)
        page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/tracks/")


def _shoot(page: Page, artifacts_dir, name: str, status: int = 200) -> None:
    """Full-length screenshots of the page at desktop and phone width (it is
    reloaded at each, as a visitor on that screen would get it), and on the
    phone nothing wider than the screen: wide tables scroll in their box."""
    for size, viewport in VIEWPORTS.items():
        page.set_viewport_size(viewport)
        response = page.reload()
        assert response.status == status, (name, size, response.status)
        page.screenshot(path=artifacts_dir / f"audit-{name}-{size}.png", full_page=True)
        if size == "phone":
            assert page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"
            ), f"{name} scrolls sideways on a phone"
    page.set_viewport_size(DESKTOP)


def _csv_rows(download: Download) -> list[list[str]]:
    with open(download.path(), encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_an_auditor_reads_the_parity_drills_down_and_exports(
    page, live_server, artifacts_dir, totp_code
):
    # given a small catalogue with its figures computed, and an auditor with
    # an authenticator app
    _catalogue()
    secret = _auditor()
    base = live_server.url
    page.set_viewport_size(DESKTOP)

    # when the auditor signs in with both factors and opens the audit
    _sign_in(page, base, AUDITOR, code=totp_code(secret))
    page.goto(f"{base}/audit/")

    # then the page leads with the finding: the shipped policy treats the
    # classes differently for every use, each named in a list
    expect(page.get_by_role("heading", level=1)).to_have_text("Transparency audit")
    finding = page.get_by_role("note", name="Finding")
    expect(finding.locator(".parity-sentence")).to_have_text(f"≠ {PARITY}")
    expect(finding.get_by_role("listitem")).to_have_count(4)
    for index, use in enumerate(USES.values()):
        expect(finding.get_by_role("listitem").nth(index)).to_contain_text(
            f"{use.name}: label-licensed content is never used; independent "
            "content is used"
        )
    expect(page.get_by_text("The figures are being computed")).to_have_count(0)
    _shoot(page, artifacts_dir, "index")

    # when they follow the independent "No answer" count of generative AI
    # training, a link named by what it counts
    genai = page.get_by_role("table", name=re.compile(f"^{USES[GENAI].name}"))
    count = genai.get_by_role(
        "link", name="3 no answer, independent: see the tracks", exact=True
    )
    expect(count).to_have_text("3")
    count.click()

    # then the drill-down lists exactly the indie tracks without an answer
    expect(page.get_by_role("heading", level=1)).to_contain_text("No answer")
    tracks = page.get_by_role("table", name="The tracks, by track id")
    expect(tracks.get_by_role("rowheader")).to_have_text(GENAI_NO_ANSWER)
    for row in (
        tracks.get_by_role("row").filter(has=page.get_by_role("rowheader")).all()
    ):
        expect(row).to_contain_text(INDIE)
        expect(row).to_contain_text("No answer")
        expect(row).to_contain_text("Not eligible")
    _shoot(page, artifacts_dir, "drill-down")

    # when they download every one of them
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download every one of them (CSV)").click()
    download = downloading.value

    # then the CSV has the documented columns and one row per track
    assert download.suggested_filename == (
        "refrain-independent-genai-training-no_answer.csv"
    )
    header, *rows = _csv_rows(download)
    assert header == DRILL_DOWN_COLUMNS
    assert [row[header.index("title")] for row in rows] == GENAI_NO_ANSWER
    assert {row[header.index("artist")] for row in rows} == {INDIE}
    assert {row[header.index("answer")] for row in rows} == {"No answer"}

    # when they search the ledger for the indie artist's address
    page.goto(f"{base}/audit/")
    page.get_by_role("link", name="Ledger search").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ledger search")
    page.get_by_label("Artist", exact=True).fill(INDIE)
    page.get_by_role("button", name="Search", exact=True).click()

    # then each of the artist's changes is a row, and nobody else's
    expect(page).to_have_url(re.compile(r"artist=indie%40example\.com"))
    ledger = page.get_by_role("table", name="Ledger rows, newest first")
    answered = [title for title, answers in INDIE_ANSWERS.items() if answers]
    expect(ledger.get_by_role("rowheader")).to_have_count(len(answered))
    for title in answered:
        expect(
            ledger.get_by_role("rowheader", name=re.compile(f"^{title}"))
        ).to_be_visible()
    expect(ledger).not_to_contain_text(OTHER_TITLE)
    _shoot(page, artifacts_dir, "ledger")

    # when they download every match
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download every match (CSV)").click()
    download = downloading.value

    # then the CSV holds the same rows as the ledger, oldest first
    assert download.suggested_filename == "refrain-ledger.csv"
    header, *rows = _csv_rows(download)
    assert header == [name for name, _ in LEDGER_COLUMNS]
    ids = list(
        LedgerEntry.objects.filter(track__artist__email=INDIE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert len(ids) == len(answered)
    assert [int(row[header.index("id")]) for row in rows] == ids
    assert {row[header.index("artist")] for row in rows} == {INDIE}
    assert sorted(row[header.index("title")] for row in rows) == sorted(answered)

    # and how each number is computed is one page, linked from the audit
    page.goto(f"{base}/audit/")
    page.get_by_role("link", name="How each number is computed").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "How each number is computed"
    )
    expect(page.locator("#figure-no_answer")).to_have_text("No answer")
    _shoot(page, artifacts_dir, "how")


def test_an_artist_is_refused_the_audit_with_the_staff_page(
    page, live_server, artifacts_dir
):
    # given the catalogue; its indie artist is not staff
    _catalogue()
    base = live_server.url

    # when someone signed out opens the audit, they are asked to sign in
    page.goto(f"{base}/audit/")
    expect(page).to_have_url(f"{base}/accounts/login/?next=/audit/")

    # when the indie artist signs in and opens it
    _sign_in(page, base, INDIE)
    response = page.goto(f"{base}/audit/")

    # then the site's own 403 page says whom the page is for
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "This page is not open to your account"
    )
    expect(
        page.get_by_text(
            "This page is for the platform's staff: auditors and policy admins."
        )
    ).to_be_visible()
    expect(page.get_by_role("note", name="Finding")).to_have_count(0)
    _shoot(page, artifacts_dir, "refused", status=403)

    # and so do the drill-down and the ledger search
    for path in (
        f"/audit/tracks/?license_class=independent&use={GENAI}&figure=tracks",
        "/audit/ledger/?artist=indie%40example.com&format=csv",
    ):
        response = page.goto(f"{base}{path}")
        assert response.status == 403, path
        expect(
            page.get_by_text("This page is for the platform's staff")
        ).to_be_visible()


def test_anyone_reads_the_transparency_page_without_names(
    page, live_server, artifacts_dir
):
    # given the catalogue with its figures computed
    _catalogue()

    # when someone signed out opens the transparency page
    response = page.goto(f"{live_server.url}/transparency/")

    # then it states the same finding as the audit
    assert response.status == 200
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "How independent and label-licensed music are treated"
    )
    finding = page.get_by_role("note", name="Finding")
    expect(finding.locator(".parity-sentence")).to_have_text(f"≠ {PARITY}")
    expect(finding.get_by_role("listitem")).to_have_count(4)
    # and its counts, all under the threshold here, are words and link nowhere
    genai = page.get_by_role("table", name=re.compile(f"^{USES[GENAI].name}"))
    expect(genai.get_by_role("cell", name="fewer than 10").first).to_be_visible()
    expect(genai.get_by_role("link")).to_have_count(0)
    # and it names no track and no artist
    text = page.locator("body").inner_text()
    for name in [
        *INDIE_ANSWERS,
        OTHER_TITLE,
        *SIGNED_TITLES,
        INDIE,
        "Ines Indie",
        "other@example.com",
        "signed@example.com",
    ]:
        assert name not in text, name
    _shoot(page, artifacts_dir, "transparency")
