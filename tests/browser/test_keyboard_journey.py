"""Keyboard only (issue 15): an artist signs in, answers on the list and on
the track page, changes many tracks at once (ticked, then every track that
matches, confirmed) and sets a default, without a mouse.

The page is driven through ``page.keyboard`` alone (Tab, Shift+Tab, Enter,
Space, arrow keys, typed text): never ``click``, ``check``, ``fill`` or
``focus``. After every key that moves the focus, the focused element must be
the one expected (found by role and accessible name, as in the other
journeys) and must show a focus ring: an outline, or a box-shadow ring, on
it or, for a radio in a framed choice, on its label, inside the viewport.
Every element a Tab passes on the way is held to the same ring.

Screenshots of the focus at each step: ``tests/artifacts/keyboard-*.png``."""

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from catalog.models import Track
from consent.models import ArtistDefault, TrackConsent
from consent.services import trackconsent_create_missing
from consent.uses import USES, Use
from tests.factories import TEST_PASSWORD, TrackFactory, UserFactory

pytestmark = [
    pytest.mark.browser,
    # pytest-playwright's stand-in for pytest-base-url defines a session fixture
    # as an instance method, which pytest 9 deprecates; not ours to fix.
    pytest.mark.filterwarnings(
        "ignore:Session-scoped fixtures defined as instance methods"
        ":pytest.PytestRemovedIn10Warning"
    ),
]

ARTIST = "keys@example.com"
WIDE = {"width": 1280, "height": 800}
# Uploaded in this order: the list shows the newest first.
TITLES = ["Slow River", "Paper Moon", "Harbour Lights", "Night Drive"]
FIRST_ROW = TITLES[-1]
# The budget: the first answer within a few Tabs of the skip link.
MAX_TABS_TO_FIRST_ANSWER = 8
GENAI, OTHER, INFERENCE, MINING = (
    Use.GENAI_TRAINING,
    Use.AI_TRAINING,
    Use.AI_INFERENCE,
    Use.DATA_MINING,
)

# The focused element, whether it shows a ring and where: on itself, or (a
# radio or tick box in a framed choice) on its label; and whether it is in
# the viewport. A ring is an outline, or a box-shadow that is not inset with a
# spread of 2px or more (the nav's current-page underline is an inset shadow),
# of 3:1 contrast or more with the background inside or outside it (WCAG
# 1.4.11): the site's yellow halo alone is not enough on a light page.
FOCUS_STATE = """() => {
  const rgba = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => {
    const lin = (c) => (c /= 255) <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  };
  const contrast = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] === 1) return c;
    }
    return [255, 255, 255];
  };
  const ring = (el) => {
    const s = getComputedStyle(el);
    const colours = [];
    if (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2) {
      colours.push(rgba(s.outlineColor));
    }
    for (const one of s.boxShadow.split(/,(?![^(]*\\))/)) {
      const px = one.match(/(-?[\\d.]+)px/g) || [];
      if (!one.includes("inset") && px.length === 4 && parseFloat(px[3]) >= 2) {
        colours.push(rgba(one.slice(0, one.indexOf(")") + 1)));
      }
    }
    const inside = background(el), outside = background(el.parentElement);
    return colours.some((c) => (c.length === 3 || c[3] === 1)
      && Math.max(contrast(c, inside), contrast(c, outside)) >= 3);
  };
  const e = document.activeElement;
  if (!e || e === document.body) return {what: "nothing", ok: false};
  const label = e.closest("label");
  const ringed = ring(e) ? e : label && ring(label) ? label : null;
  const box = (ringed || e).getBoundingClientRect();
  const inView = box.width > 0 && box.height > 0 && box.bottom > 0
    && box.right > 0 && box.top < innerHeight && box.left < innerWidth;
  const name = (e.getAttribute("aria-label") || e.innerText || e.value || "")
    .trim().replace(/\\s+/g, " ").slice(0, 60);
  return {
    what: `<${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}> ${name}`,
    ok: ringed !== null && inView && e.matches(":focus-visible"),
    on: ringed === e ? "itself" : ringed ? "its label" : "nowhere",
    inView,
  };
}"""


def _track(artist, title: str) -> Track:
    """A track with its consent rows, as every real write makes it."""
    track = TrackFactory(artist=artist, title=title)
    trackconsent_create_missing(track_ids=[track.pk])
    return track


def _answer(page: Page, use: str, title: str, words: str) -> Locator:
    """One of the list's three answers for a track's use (its group is named
    by the use, the title and the answer in force)."""
    group = page.get_by_role(
        "group", name=re.compile(f"^{re.escape(USES[use].name)} for “{title}”: ")
    )
    return group.get_by_role("button", name=words, exact=True)


def _status(page: Page) -> Locator:
    """The page's flash messages (a polite live region)."""
    return page.locator("[role=status]", has=page.locator(".messages"))


def _ring(page: Page, step: str) -> str:
    """The focused element shows a ring, in view; returns what it is."""
    state = page.evaluate(FOCUS_STATE)
    assert state["ok"], f"{step}: no visible focus on {state}"
    return state["what"]


def _at(page: Page, target: Locator, step: str) -> None:
    """The focus is on ``target`` (and only there), with a visible ring."""
    expect(target).to_be_focused()
    _ring(page, step)


def _tab_to(page: Page, target: Locator, step: str, *, back=False, limit=40) -> int:
    """Tab (or Shift+Tab) until ``target`` has the focus, every element on the
    way showing a ring; returns the number of presses."""
    key = "Shift+Tab" if back else "Tab"
    target.wait_for(state="attached")
    passed = []
    for presses in range(1, limit + 1):
        page.keyboard.press(key)
        passed.append(_ring(page, f"{step}, {key} {presses}"))
        if target.evaluate("e => e === document.activeElement"):
            _at(page, target, step)
            return presses
    pytest.fail(f"{step}: not reached in {limit} × {key}; passed {passed}")


def _sign_in(page: Page, base_url: str, shots=None) -> None:
    """From the sign-in page, by keyboard: e-mail, password, the button."""
    page.goto(f"{base_url}/accounts/login/")
    email = page.get_by_role("textbox", name=re.compile("^e-?mail", re.IGNORECASE))
    _tab_to(page, email, "sign-in: the e-mail field", limit=8)
    page.keyboard.type(ARTIST)
    expect(email).to_have_value(ARTIST)
    password = page.get_by_label(re.compile("^password", re.IGNORECASE))
    page.keyboard.press("Tab")
    _at(page, password, "sign-in: the password field")
    page.keyboard.type(TEST_PASSWORD)
    # exact: "Sign in with a passkey" is a button too
    submit = page.get_by_role("button", name="Sign in", exact=True)
    _tab_to(page, submit, "sign-in: the button", limit=4)
    if shots:
        page.screenshot(path=shots / "keyboard-sign-in.png")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base_url}/tracks/")


def _skip_to_tracks(page: Page, step: str) -> int:
    """Tab to "Skip to your tracks" from the top and follow it: the focus
    lands on the tracks' region. Returns the Tabs to the link."""
    skip = page.get_by_role("link", name="Skip to your tracks")
    tabs = _tab_to(page, skip, f"{step}: the skip link", limit=3)
    page.keyboard.press("Enter")
    _at(page, page.get_by_role("region", name="Your tracks"), f"{step}: skipped")
    return tabs


def _choose(page: Page, select: Locator, key: str, times: int, value: str) -> None:
    """Change a focused (closed) select with the arrow keys."""
    for _ in range(times):
        page.keyboard.press(key)
    expect(select).to_have_value(value)
    _at(page, select, f"the select, {value}")


@pytest.fixture
def catalogue():
    artist = UserFactory(email=ARTIST, display_name="Kay Keys")
    return {title: _track(artist, title) for title in TITLES}


def test_keyboard_only_on_the_list_answers_reads_help_and_changes_many(
    page, live_server, artifacts_dir, catalogue, capsys
):
    page.set_viewport_size(WIDE)
    base = live_server.url
    tracks = catalogue

    # when the artist signs in without a mouse
    _sign_in(page, base, shots=artifacts_dir)

    # then "Skip to your tracks" is among the first Tabs, and leads there
    page.evaluate("window.__sameDocument = true")
    skip_tabs = _skip_to_tracks(page, "list")
    expect(page).to_have_url(f"{base}/tracks/#tracks-table")
    page.screenshot(path=artifacts_dir / "keyboard-list-skipped.png")

    # and the first row's first answer is a few Tabs further
    yes = _answer(page, GENAI, FIRST_ROW, "Yes")
    answer_tabs = _tab_to(page, yes, "list: the first answer")
    with capsys.disabled():
        print(
            f"\nkeyboard: {skip_tabs} Tab(s) to 'Skip to your tracks', then "
            f"{answer_tabs} to the first answer"
        )
    assert answer_tabs <= MAX_TABS_TO_FIRST_ANSWER

    # when they press "Yes" with Space
    page.keyboard.press("Space")

    # then it is pressed, in place (no reload), and the focus stays on it
    expect(yes).to_have_attribute("aria-pressed", "true")
    expect(_answer(page, GENAI, FIRST_ROW, "My default: No")).to_have_attribute(
        "aria-pressed", "false"
    )
    _at(page, yes, "list: Yes, pressed")
    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    assert (
        TrackConsent.objects.get(track=tracks[FIRST_ROW], use=GENAI).decision
        == "granted"
    )
    page.screenshot(path=artifacts_dir / "keyboard-list-yes.png")

    # when they go back to the column's help and open it with Enter
    help_button = page.locator(".col-help > summary").filter(
        has_text=f"What “{USES[GENAI].name}” means"
    )
    _tab_to(page, help_button, "list: the column's help", back=True, limit=8)
    help_text = page.get_by_text(USES[GENAI].description, exact=False)
    expect(help_text).to_be_hidden()
    page.keyboard.press("Enter")

    # then its words show, the focus staying on the button; Enter closes it
    expect(help_text).to_be_visible()
    _at(page, help_button, "list: the column's help, open")
    page.screenshot(path=artifacts_dir / "keyboard-list-help.png")
    page.keyboard.press("Enter")
    expect(help_text).to_be_hidden()
    # and so does Escape, the focus back on the button
    page.keyboard.press("Enter")
    expect(help_text).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_text).to_be_hidden()
    _at(page, help_button, "list: the column's help, closed by Escape")

    # when they tick two tracks with Space
    for title in ("Paper Moon", "Slow River"):
        box = page.get_by_role("checkbox", name=f"Select “{title}”")
        _tab_to(page, box, f"list: tick “{title}”", limit=60)
        page.keyboard.press("Space")
        expect(box).to_be_checked()
    # then a bar says how many are ticked and leads back to the bulk form
    expect(page.locator("#ticked-count")).to_have_text("2 tracks ticked")
    page.screenshot(path=artifacts_dir / "keyboard-list-ticked.png")
    change = page.get_by_role("link", name="Change the ticked tracks")
    forward = _tab_to(page, change, "list: the ticked bar", limit=60)
    with capsys.disabled():
        print(f"keyboard: {forward} Tab(s) from the last tick to the ticked bar")
    page.keyboard.press("Enter")

    # and it lands on the bulk form: choose data mining, "No", ticked
    bulk = page.get_by_role("form", name="Change many tracks at once")
    use = bulk.get_by_label("Use", exact=True)
    _at(page, use, "bulk: Use")
    _choose(page, use, "ArrowDown", 3, MINING)
    state = bulk.get_by_label("Set to")
    page.keyboard.press("Tab")
    _at(page, state, "bulk: Set to")
    _choose(page, state, "ArrowDown", 1, "denied")
    page.keyboard.press("Tab")
    _at(page, bulk.get_by_label("Ticked below"), "bulk: ticked below")
    expect(bulk.get_by_label("Ticked below")).to_be_checked()
    apply = bulk.get_by_role("button", name="Apply change")
    page.keyboard.press("Tab")
    _at(page, apply, "bulk: Apply change")
    page.screenshot(path=artifacts_dir / "keyboard-bulk-ticked.png")
    page.keyboard.press("Enter")

    # then the two ticked tracks say no to data mining, the others do not
    expect(_status(page)).to_contain_text(
        f"{USES[MINING].name} set to No: 2 tracks changed, 0 already set."
    )
    decisions = dict(
        TrackConsent.objects.filter(track__in=tracks.values(), use=MINING).values_list(
            "track__title", "decision"
        )
    )
    assert decisions == {
        "Paper Moon": "denied",
        "Slow River": "denied",
        "Harbour Lights": "",
        "Night Drive": "",
    }

    # when they change other AI training to Yes for every track that matches
    _tab_to(page, use, "bulk all: Use", limit=30)
    _choose(page, use, "ArrowDown", 1, OTHER)
    page.keyboard.press("Tab")
    _at(page, state, "bulk all: Set to")
    expect(state).to_have_value("granted")
    page.keyboard.press("Tab")
    _at(page, bulk.get_by_label("Ticked below"), "bulk all: ticked below")
    everything = bulk.get_by_label(f"All {len(TITLES)} tracks")
    page.keyboard.press("ArrowRight")
    _at(page, everything, "bulk all: all tracks")
    expect(everything).to_be_checked()
    page.keyboard.press("Tab")
    _at(page, apply, "bulk all: Apply change")
    page.keyboard.press("Enter")

    # then they are asked first, and confirm with the keyboard
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Change {len(TITLES)} tracks?"
    )
    confirm = page.get_by_role("button", name=f"Change {len(TITLES)} tracks")
    confirm_tabs = _tab_to(page, confirm, "confirm: the button", limit=10)
    with capsys.disabled():
        print(f"keyboard: {confirm_tabs} Tab(s) to the confirmation's button")
    page.screenshot(path=artifacts_dir / "keyboard-bulk-confirm.png")
    page.keyboard.press("Enter")

    # and every track says yes to other AI training
    expect(_status(page)).to_contain_text(
        f"{USES[OTHER].name} set to Yes: {len(TITLES)} tracks changed, 0 already set."
    )
    for title in TITLES:
        expect(_answer(page, OTHER, title, "Yes")).to_have_attribute(
            "aria-pressed", "true"
        )
    assert set(
        TrackConsent.objects.filter(track__in=tracks.values(), use=OTHER).values_list(
            "decision", flat=True
        )
    ) == {"granted"}


def test_keyboard_only_on_the_track_page_and_the_defaults(
    page, live_server, artifacts_dir, catalogue
):
    page.set_viewport_size(WIDE)
    base = live_server.url
    title = "Paper Moon"
    track = catalogue[title]
    _sign_in(page, base)

    # when the artist follows the skip link and opens a track with Enter
    _skip_to_tracks(page, "list")
    link = page.get_by_role("link", name=title, exact=True)
    _tab_to(page, link, "list: the track's link", limit=40)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(title)

    # and Tabs to "Input to AI features" (on "My default"), then arrows to Yes
    name = USES[INFERENCE].name
    answer = page.get_by_role("group", name=f"Your answer: {name}")
    _tab_to(page, answer.get_by_label("My default: No"), "track: the answer", limit=20)
    for words in ("No", "Yes"):
        page.keyboard.press("ArrowLeft")
        choice = answer.get_by_label(words, exact=True)
        _at(page, choice, f"track: {words}")
        expect(choice).to_be_checked()
    page.screenshot(path=artifacts_dir / "keyboard-track-yes.png")
    save = page.get_by_role("button", name=f"Save your answer for {name}")
    page.keyboard.press("Tab")
    _at(page, save, "track: Save")
    page.screenshot(path=artifacts_dir / "keyboard-track-save.png")
    page.keyboard.press("Enter")

    # then it is saved, and the choice stays
    expect(_status(page)).to_contain_text(f"{name} for “{title}” is now Yes. Saved.")
    expect(answer.get_by_label("Yes", exact=True)).to_be_checked()
    assert TrackConsent.objects.get(track=track, use=INFERENCE).decision == "granted"

    # when they go back up to the main menu's Settings (the page came back at
    # the use's card: Tab goes on from there), then to Consent defaults
    expect(page).to_have_url(re.compile(f"#use-{INFERENCE}$"))
    main_nav = page.get_by_role("navigation", name="Main")
    settings_link = main_nav.get_by_role("link", name="Settings")
    _tab_to(page, settings_link, "nav: Settings", back=True, limit=15)
    page.keyboard.press("Enter")
    defaults_link = page.get_by_role("navigation", name="Settings").get_by_role(
        "link", name="Consent defaults"
    )
    _tab_to(page, defaults_link, "settings: Consent defaults", limit=10)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/settings/consent/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your defaults")

    # and make "Yes" their default for data mining (from "Not set")
    mining = page.get_by_role("group", name=USES[MINING].name)
    _tab_to(
        page,
        mining.get_by_role("radio", name=re.compile("^Not set")),
        "defaults: data mining",
        limit=20,
    )
    for words in ("No", "Yes"):
        page.keyboard.press("ArrowLeft")
        choice = mining.get_by_label(words, exact=True)
        _at(page, choice, f"defaults: {words}")
        expect(choice).to_be_checked()
    save = page.get_by_role("button", name="Save defaults")
    _tab_to(page, save, "defaults: Save", limit=5)
    page.screenshot(path=artifacts_dir / "keyboard-defaults-save.png")
    page.keyboard.press("Enter")

    # then it is saved, and the choice is shown as theirs
    expect(_status(page)).to_contain_text("Your defaults were saved.")
    mining = page.get_by_role("group", name=USES[MINING].name)
    expect(mining.get_by_label("Yes", exact=True)).to_be_checked()
    assert (
        ArtistDefault.objects.get(artist=track.artist, use=MINING).decision == "granted"
    )
