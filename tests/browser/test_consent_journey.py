"""Consent in a real browser: the demo artist answers per track and per use on
the list (in place, with HTMX) and on the track page, sets defaults, changes
many tracks at once; the label-signed artist sees locked controls with the
reason; the policy admin reads the audit page and previews a policy change.

Controls are found by role and accessible name, never by CSS structure: the
list's markup may change, what a screen reader announces must not."""

import re

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core.management import call_command
from playwright.sync_api import Locator, Page, expect

from accounts.models import User
from catalog.demo import demo_isrc
from catalog.models import LicenseClass, Track
from consent import tasks
from consent.management.commands.seed_demo import DEMO_PASSWORD
from consent.models import BulkJob, LedgerEntry, TrackConsent
from consent.services import bulk_job_run
from consent.uses import USES, Use

pytestmark = [
    pytest.mark.browser,
    # pytest-playwright's stand-in for pytest-base-url defines a session fixture
    # as an instance method, which pytest 9 deprecates; not ours to fix.
    pytest.mark.filterwarnings(
        "ignore:Session-scoped fixtures defined as instance methods"
        ":pytest.PytestRemovedIn10Warning"
    ),
]

INDIE = "indie@example.com"
SIGNED = "signed@example.com"
ADMIN = "admin@example.com"
EMAIL_LABEL = re.compile(r"^e-?mail:?$", re.IGNORECASE)
PASSWORD_LABEL = re.compile(r"^password:?$", re.IGNORECASE)
CODE_LABEL = re.compile(r"^(authenticator )?code:?$", re.IGNORECASE)
LABEL_LOCK_REASON = (
    "Label-licensed: the platform does not allow AI training of this track"
)
WIDE = {"width": 1280, "height": 800}
NARROW_WIDTH = 360
RECEIPT_HREF = re.compile(r"^/receipts/[0-9a-f-]{36}\.json$")


def _sign_in(
    page: Page, base_url: str, email: str, *, code: str = "", screenshot=None
) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(DEMO_PASSWORD)
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
    # exact: "Sign in with a passkey" is a button too
    page.get_by_role("button", name="Sign in", exact=True).click()
    if code:
        page.get_by_label(CODE_LABEL).fill(code)
        if screenshot:
            page.screenshot(path=screenshot.with_stem(f"{screenshot.stem}-code"))
        page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/tracks/")


def _switch_name(use: str, title: str) -> str:
    """The accessible name of a use's control for one track."""
    return f"{USES[use].name} for “{title}”"


def _switch(page: Page, use: str, title: str) -> Locator:
    """A use's three answers for one track (a group named by the use, the
    track and the answer in force)."""
    name = re.compile(f"^{re.escape(_switch_name(use, title))}: ")
    return page.get_by_role("group", name=name)


def _answer(page: Page, use: str, title: str, words: str) -> Locator:
    return _switch(page, use, title).get_by_role("button", name=words, exact=True)


def _status(page: Page) -> Locator:
    """The page's flash messages (a polite live region)."""
    return page.locator("[role=status]", has=page.locator(".messages"))


def _no_sideways_scroll(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= NARROW_WIDTH, width


def _assert_ring(locator: Locator, of: str = "") -> None:
    """A visible focus outline on the element (or on ``element.<of>``)."""
    style = locator.evaluate(
        f"e => {{ const s = getComputedStyle(e{'.' + of if of else ''});"
        " return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert style[0] != "none" and style[1] != "0px", style


def _undecided_track(email: str) -> Track:
    """One of the artist's tracks with a title of its own and no decision yet."""
    tracks = list(Track.objects.filter(artist__email=email).order_by("isrc"))
    titles = [track.title for track in tracks]
    decided = set(
        TrackConsent.objects.exclude(decision="").values_list("track_id", flat=True)
    )
    for track in tracks:
        if titles.count(track.title) == 1 and track.pk not in decided:
            return track
    pytest.fail("no undecided track with a unique title")


def test_artist_answers_per_track_sets_defaults_and_changes_many(
    page, live_server, artifacts_dir, settings, monkeypatch
):
    # given the demo catalogue and one of the indie artist's undecided tracks
    call_command("seed_demo")
    track = _undecided_track(INDIE)
    title = track.title
    page.set_viewport_size(WIDE)

    # when the indie artist signs in
    _sign_in(page, live_server.url, INDIE, screenshot=artifacts_dir / "sign-in.png")

    # then every track shows the same three answers per use as its page,
    # each group named by use, title and the answer in force (their default)
    genai = _switch(page, Use.GENAI_TRAINING, title)
    expect(genai).to_have_count(1)
    for use in USES:
        expect(_answer(page, use, title, "My default: No")).to_have_attribute(
            "aria-pressed", "true"
        )
    page.screenshot(path=artifacts_dir / "consent-list.png", full_page=True)

    # when they say yes to generative AI training, by keyboard
    page.evaluate("window.__sameDocument = true")
    _answer(page, Use.GENAI_TRAINING, title, "Yes").focus()
    page.keyboard.press("Space")

    # then the control says yes, in its state and its name, without a reload
    yes = _answer(page, Use.GENAI_TRAINING, title, "Yes")
    expect(yes).to_have_attribute("aria-pressed", "true")
    expect(yes).to_be_focused()
    expect(
        _answer(page, Use.GENAI_TRAINING, title, "My default: No")
    ).to_have_attribute("aria-pressed", "false")
    expect(genai).to_have_accessible_name(
        f"{_switch_name(Use.GENAI_TRAINING, title)}: Yes"
    )
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    page.screenshot(path=artifacts_dir / "consent-list-switched.png")
    # and a screen reader is told
    expect(
        page.get_by_role("status").filter(
            has_text=f"{_switch_name(Use.GENAI_TRAINING, title)} is now Yes"
        )
    ).to_have_count(1)
    # and it is stored
    assert (
        TrackConsent.objects.get(track=track, use=Use.GENAI_TRAINING).decision
        == "granted"
    )

    # when they reload, the control still says yes
    page.reload()
    expect(yes).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("window.__sameDocument") is None

    # and on a small phone the list fits without sideways scrolling
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 800})
    page.reload()
    expect(genai).to_be_visible()
    page.screenshot(path=artifacts_dir / "consent-list-360.png", full_page=True)
    _no_sideways_scroll(page)
    page.set_viewport_size(WIDE)
    page.reload()

    # when they open the track
    page.get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)

    # then each use says whether the track is eligible and why
    expect(page.get_by_text("Eligible: you said yes for this track")).to_have_count(1)

    # when they answer Yes, then No (by keyboard), then My default for
    # "Input to AI features", saving each time
    use = Use.AI_INFERENCE
    name = USES[use].name
    answer = page.get_by_role("group", name=f"Your answer: {name}")
    save = page.get_by_role("button", name=f"Save your answer for {name}")
    for choice, words in (
        ("Yes", "Yes"),
        ("No", "No"),
        ("My default: No", "your default"),
    ):
        if choice == "No":
            # arrow keys move the choice within the group, Tab reaches Save
            answer.get_by_label("Yes", exact=True).focus()
            page.keyboard.press("ArrowRight")
            expect(answer.get_by_label("No", exact=True)).to_be_focused()
            _assert_ring(answer.get_by_label("No", exact=True), "closest('label')")
            page.keyboard.press("Tab")
            expect(save).to_be_focused()
            _assert_ring(save)
            page.keyboard.press("Enter")
        else:
            answer.get_by_label(choice, exact=True).check()
            save.click()

        # then a message says what was saved, and the choice stays selected
        expect(_status(page)).to_contain_text(
            f"{name} for “{title}” is now {words}. Saved."
        )
        expect(answer.get_by_label(choice, exact=True)).to_be_checked()

    # and the history lists the changes, newest first, in the same words
    history = page.get_by_role("table", name=re.compile("change", re.IGNORECASE))
    rows = history.locator("tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.first).to_contain_text(name)
    expect(rows.first).to_contain_text("No → My default")
    expect(rows.nth(1)).to_contain_text("Yes → No")
    expect(rows.nth(2)).to_contain_text("My default → Yes")
    assert LedgerEntry.objects.filter(track=track).count() == 4

    # and every change has a receipt to download
    receipts = page.get_by_role("link", name=re.compile(r"^Receipt of "))
    expect(receipts).to_have_count(4)
    assert RECEIPT_HREF.match(receipts.first.get_attribute("href"))
    page.screenshot(path=artifacts_dir / "consent-track.png", full_page=True)

    # and on a small phone the track page fits without sideways scrolling
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 800})
    page.screenshot(path=artifacts_dir / "consent-track-360.png", full_page=True)
    _no_sideways_scroll(page)
    page.set_viewport_size(WIDE)

    # when they make "Yes" their default for data mining
    page.goto(f"{live_server.url}/settings/consent/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your defaults")
    page.get_by_role("group", name=USES[Use.DATA_MINING].name).get_by_label(
        "Yes", exact=True
    ).check()
    page.get_by_role("button", name="Save defaults").click()

    # then it is saved, and the choice is shown as theirs
    expect(_status(page)).to_contain_text("Your defaults were saved.")
    expect(
        page.get_by_role("group", name=USES[Use.DATA_MINING].name).get_by_label(
            "Yes", exact=True
        )
    ).to_be_checked()
    page.screenshot(path=artifacts_dir / "consent-settings.png", full_page=True)
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 800})
    page.screenshot(path=artifacts_dir / "consent-settings-360.png", full_page=True)
    _no_sideways_scroll(page)
    page.set_viewport_size(WIDE)

    # when they say yes to other AI training for all 40 tracks at once
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Tracks"
    ).click()
    bulk = page.get_by_role("form", name="Change many tracks at once")
    bulk.get_by_label("Use", exact=True).select_option(label=USES[Use.AI_TRAINING].name)
    bulk.get_by_label("Set to").select_option(label="Yes")
    bulk.get_by_label("All 40 tracks").check()
    bulk.get_by_role("button", name="Apply change").click()
    # (every track that matches: asked first, with the count)
    expect(page.get_by_role("heading", level=1)).to_have_text("Change 40 tracks?")
    page.get_by_role("button", name="Change 40 tracks").click()

    # then they are told how many changed (3 demo tracks had said yes already)
    expect(_status(page)).to_contain_text(
        f"{USES[Use.AI_TRAINING].name} set to Yes: 37 tracks changed, 3 already set."
    )
    expect(_answer(page, Use.AI_TRAINING, title, "Yes")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.screenshot(path=artifacts_dir / "consent-bulk-done.png", full_page=True)

    # when a larger change runs in the background (the limit lowered to 10),
    # they see its progress, which updates by itself once the worker is done
    settings.REFRAIN_BULK_INLINE_LIMIT = 10
    queued = []
    monkeypatch.setattr(tasks.run_bulk_change, "delay", queued.append)
    bulk.get_by_label("Use", exact=True).select_option(
        label=USES[Use.AI_INFERENCE].name
    )
    bulk.get_by_label("Set to").select_option(label="No")
    bulk.get_by_label("All 40 tracks").check()
    bulk.get_by_role("button", name="Apply change").click()
    # (every track that matches: asked first, with the count)
    expect(page.get_by_role("heading", level=1)).to_have_text("Change 40 tracks?")
    page.get_by_role("button", name="Change 40 tracks").click()
    expect(page).to_have_url(re.compile(r"/tracks/bulk/[0-9a-f-]{36}/"))
    progress = page.get_by_role("progressbar")
    expect(progress).to_be_visible()
    expect(page.get_by_text("Waiting to start: 0 of 40")).to_be_visible()
    page.screenshot(path=artifacts_dir / "consent-bulk-waiting.png", full_page=True)
    job = BulkJob.objects.get(pk=queued[0])
    page.evaluate("window.__sameDocument = true")
    bulk_job_run(job_id=job.pk)
    expect(page.get_by_text("Done: 40 of 40")).to_be_visible()
    expect(
        page.get_by_text(f"{USES[Use.AI_INFERENCE].name} set to No: 40 tracks changed")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Download the receipt")).to_be_visible()
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    page.screenshot(path=artifacts_dir / "consent-bulk-status.png", full_page=True)
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 800})
    page.screenshot(path=artifacts_dir / "consent-bulk-status-360.png", full_page=True)
    _no_sideways_scroll(page)


def test_label_signed_artist_sees_locked_controls_with_the_reason(
    page, live_server, artifacts_dir
):
    # given the demo catalogue: the signed artist has 30 label tracks, 5 not
    call_command("seed_demo")
    label_track = (
        Track.objects.filter(artist__email=SIGNED, license_class=LicenseClass.LABEL)
        .order_by("isrc")
        .first()
    )
    own_track = Track.objects.get(isrc=demo_isrc("SGI", 24, 1))
    page.set_viewport_size(WIDE)

    # when they sign in and keep only label-licensed tracks
    _sign_in(page, live_server.url, SIGNED)
    page.get_by_label("Licence").select_option(label="Label-licensed")
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.locator("#track-total")).to_have_text("30 tracks match your filters")

    # then each label track says why its controls are locked, in words
    expect(page.get_by_text(LABEL_LOCK_REASON, exact=True)).to_have_count(30)
    # and none of its uses can be switched
    for use in USES:
        name = _switch_name(use, label_track.title)
        expect(_switch(page, use, label_track.title)).to_have_count(0)
        expect(page.get_by_role("img", name=name).first).to_contain_text("Not allowed")
    page.screenshot(path=artifacts_dir / "consent-signed.png", full_page=True)

    # and on a small phone too, without sideways scrolling
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 800})
    page.reload()
    expect(page.get_by_text(LABEL_LOCK_REASON, exact=True).first).to_be_visible()
    _no_sideways_scroll(page)
    page.screenshot(path=artifacts_dir / "consent-signed-360.png", full_page=True)
    page.set_viewport_size(WIDE)

    # when they open a label track, each use says it is locked and why
    page.goto(f"{live_server.url}{label_track.get_absolute_url()}")
    expect(page.get_by_role("heading", level=1)).to_have_text(label_track.title)
    expect(page.get_by_role("radio")).to_have_count(0)
    expect(
        page.get_by_text(
            "Label-licensed: the platform does not allow generative AI training "
            "of this track."
        )
    ).to_be_visible()
    page.screenshot(path=artifacts_dir / "consent-signed-track.png", full_page=True)

    # and their own independent tracks keep working switches
    page.goto(f"{live_server.url}/tracks/?license=independent")
    expect(_answer(page, Use.DATA_MINING, own_track.title, "Yes")).to_be_enabled()


def test_policy_admin_reads_audit_and_previews_a_policy_change(
    page, live_server, artifacts_dir, totp_code
):
    # given the demo catalogue, and the policy admin's authenticator app
    call_command("seed_demo")
    secret = generate_totp_secret()
    TOTP.activate(User.objects.get(email=ADMIN), secret)
    page.set_viewport_size(WIDE)

    # when they sign in with their second factor and open the audit page
    _sign_in(
        page,
        live_server.url,
        ADMIN,
        code=totp_code(secret),
        screenshot=artifacts_dir / "sign-in-staff.png",
    )
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Audit"
    ).click()

    # then the policy is one table: a row per use, a column per licence class
    expect(page.get_by_role("heading", level=1)).to_have_text("Transparency audit")
    policy = page.get_by_role("table", name=re.compile("policy", re.IGNORECASE))
    expect(policy.get_by_role("columnheader")).to_have_text(
        ["Use", "Independent", "Label-licensed"]
    )
    expect(policy.get_by_role("rowheader")).to_have_count(4)
    genai_row = policy.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name=USES[Use.GENAI_TRAINING].name)
    )
    expect(genai_row.get_by_role("cell")).to_have_text(
        [re.compile("artist.s yes", re.IGNORECASE), re.compile("never", re.IGNORECASE)]
    )
    page.screenshot(path=artifacts_dir / "audit.png", full_page=True)

    # when they open the policy editor
    page.get_by_role("link", name="Change the policy").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Change the policy")

    # then the rules are a table too: rows are uses, columns licence classes
    rules = page.get_by_role("table", name=re.compile("rules", re.IGNORECASE))
    expect(rules.get_by_role("columnheader")).to_have_text(
        ["Use", "Independent", "Label-licensed"]
    )
    expect(rules.get_by_role("combobox")).to_have_count(8)

    # when they would allow generative AI training of label tracks unless the
    # artist says no, and preview the effect
    page.get_by_label(
        f"Label-licensed: {USES[Use.GENAI_TRAINING].name}", exact=True
    ).select_option(value="opt_out")
    page.get_by_label(re.compile("^Why the policy changes")).fill(
        "Trying out opt-out for label-licensed music."
    )
    page.get_by_role("button", name="Preview the effect").click()

    # then they see, per class and use, how many tracks would change
    counts = page.get_by_role("table", name=re.compile("would change", re.IGNORECASE))
    expect(counts.get_by_role("row")).to_have_count(2)
    changed = counts.get_by_role("row").nth(1)
    expect(changed.get_by_role("rowheader")).to_contain_text("Label-licensed")
    expect(changed.get_by_role("rowheader")).to_contain_text(
        USES[Use.GENAI_TRAINING].name
    )
    expect(changed.get_by_role("cell").nth(1)).to_have_text("30")
    expect(changed.get_by_role("cell").nth(2)).to_have_text("0")
    expect(page.get_by_role("button", name="Save as a new version")).to_be_visible()
    # and the choice they previewed is still selected
    expect(
        page.get_by_label(
            f"Label-licensed: {USES[Use.GENAI_TRAINING].name}", exact=True
        )
    ).to_have_value("opt_out")
    page.screenshot(path=artifacts_dir / "policy-preview.png", full_page=True)

    # and on a small phone the editor fits without sideways scrolling
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 800})
    expect(counts).to_be_visible()
    _no_sideways_scroll(page)
    page.screenshot(path=artifacts_dir / "policy-preview-360.png", full_page=True)
