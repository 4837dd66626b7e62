"""The demo artist's catalogue in a real browser: sign in, search, filter,
page, open a track, upload one, have a fake one refused, all by keyboard too."""

import re
import wave
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from catalog.demo import demo_rows
from catalog.models import LicenseClass, Track
from catalog.services import catalog_import
from consent.management.commands.seed_demo import DEMO_PASSWORD

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
# allauth's labels are "Email" and "Password"; the product's copy may one day
# say "e-mail", so both spellings are accepted.
EMAIL_LABEL = re.compile(r"^e-?mail:?$", re.IGNORECASE)
PASSWORD_LABEL = re.compile(r"^password:?$", re.IGNORECASE)
SEARCH_LABEL = "Search by title or ISRC"
ISRC_SHAPE = re.compile(r"^[A-Z]{2}-[A-Z0-9]{3}-\d{2}-\d{5}$")
NARROW_WIDTH = 360
# WCAG 2.2 target size (enhanced) and Apple's/Google's touch guidance.
TAP_TARGET = 44
ROW_TITLES = "table.track-table tbody th[scope=row] a"
# The 40-track list at 360 px, whole page (10,883 px when written).
PHONE_LIST_MAX = 11_500


def _sign_in(page: Page, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(DEMO_PASSWORD)
    # exact: "Sign in with a passkey" is a button too
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base_url}/tracks/")


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _write_wav(path: Path, *, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A real PCM WAV file (mono, 16-bit, silence)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return path


def _tab_to(page: Page, element_id: str, limit: int = 40) -> None:
    """Press Tab from the top of the page until ``element_id`` has focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            return
    pytest.fail(f"#{element_id} is not reachable with Tab")


def _focus_ring(page: Page) -> dict[str, str]:
    return page.evaluate(
        """() => {
            const style = getComputedStyle(document.activeElement);
            return {style: style.outlineStyle, width: style.outlineWidth};
        }"""
    )


def _assert_visible_focus(page: Page) -> None:
    ring = _focus_ring(page)
    assert ring["style"] != "none", ring
    assert ring["width"] != "0px", ring


def test_demo_artist_searches_opens_and_uploads_tracks(
    page, live_server, artifacts_dir, tmp_path
):
    # given the demo catalogue, and a word from one of the indie artist's titles
    call_command("seed_demo")
    titles = list(
        Track.objects.filter(artist__email=INDIE)
        .order_by("title")
        .values_list("title", flat=True)
    )
    assert len(titles) == 40
    word = titles[0].split()[0]
    matching = [title for title in titles if word.lower() in title.lower()]

    # and a visitor on the home page of a small phone
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 740})
    page.goto(f"{live_server.url}/")
    sign_up = page.get_by_role("link", name="Create your artist account")
    sign_in = page.locator("main").get_by_role("link", name="Sign in", exact=True)
    expect(sign_up).to_be_visible()
    page.screenshot(path=artifacts_dir / "home-360.png", full_page=True)
    # then nothing scrolls sideways and the stacked buttons do not touch
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW_WIDTH
    first, second = sign_up.bounding_box(), sign_in.bounding_box()
    assert second["y"] >= first["y"] + first["height"] + 8, (first, second)
    # and every header link is a comfortable tap target
    for link in page.locator("header nav a, header nav button").all():
        assert link.bounding_box()["height"] >= TAP_TARGET, link.inner_text()
    page.set_viewport_size({"width": 1280, "height": 720})

    # when the indie artist signs in
    _sign_in(page, live_server.url, INDIE)

    # then they see their 40 tracks and one upload button, in the header
    total = page.locator("#track-total")
    expect(total).to_have_text("40 tracks")
    expect(page.locator(ROW_TITLES)).to_have_count(40)
    expect(page.get_by_role("link", name="Upload tracks")).to_have_count(1)
    page.screenshot(path=artifacts_dir / "catalog-list.png", full_page=True)

    # and the search box, every select of the filters and Apply are
    # reachable with Tab, in that order, each showing where the focus is
    page.reload()
    selects = page.locator("form[role=search] select").evaluate_all(
        "elements => elements.map(element => element.id)"
    )
    assert {"id_license", "id_sort"} <= set(selects)
    _tab_to(page, "id_q")
    _assert_visible_focus(page)
    for expected in selects:
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == expected
        _assert_visible_focus(page)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Apply", exact=True)).to_be_focused()
    _assert_visible_focus(page)
    page.screenshot(path=artifacts_dir / "catalog-list-keyboard.png")

    # and on a small phone the list fits without sideways scrolling
    page.set_viewport_size({"width": NARROW_WIDTH, "height": 740})
    page.reload()
    expect(total).to_have_text("40 tracks")
    page.screenshot(path=artifacts_dir / "catalog-list-360.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= NARROW_WIDTH
    # and the 40 tracks are a compact list, not 14,000 px of scrolling
    # (about 250 px a track: title, meta, four uses, the last change)
    assert page.evaluate("document.documentElement.scrollHeight") <= PHONE_LIST_MAX
    for link in page.locator("header nav a, header nav button").all():
        assert link.bounding_box()["height"] >= TAP_TARGET, link.inner_text()
    page.set_viewport_size({"width": 1280, "height": 720})
    page.reload()  # on a wide screen the search is open

    # when they search for the word
    page.get_by_label(SEARCH_LABEL).fill(word)
    page.get_by_role("button", name="Apply", exact=True).click()

    # then the URL keeps the search and every result contains the word
    expect(page).to_have_url(re.compile(r"/tracks/\?"))
    assert _query(page.url)["q"] == [word]
    expect(page.locator(ROW_TITLES)).to_have_count(len(matching))
    shown = page.locator(ROW_TITLES).all_inner_texts()
    assert sorted(shown) == sorted(matching)
    assert all(word.lower() in title.lower() for title in shown)
    expect(total).to_have_text(
        "1 track matches your filters"
        if len(matching) == 1
        else f"{len(matching)} tracks match your filters"
    )
    expect(page.get_by_label(SEARCH_LABEL)).to_have_value(word)

    # when they also keep only independent tracks
    page.get_by_label("Licence").select_option(label="Independent")
    page.get_by_role("button", name="Apply", exact=True).click()

    # then the search and the filter are both in the URL and the form
    expect(page).to_have_url(re.compile(r"license=independent"))
    assert _query(page.url)["q"] == [word]
    assert _query(page.url)["license"] == ["independent"]
    expect(page.locator(ROW_TITLES)).to_have_count(len(matching))
    expect(page.get_by_label("Licence")).to_have_value("independent")

    # when they clear the search, every one of their 40 tracks is independent
    page.get_by_label(SEARCH_LABEL).fill("")
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(total).to_have_text("40 tracks match your filters")
    assert _query(page.url)["license"] == ["independent"]

    # when they search again and open the first result
    page.get_by_label(SEARCH_LABEL).fill(word)
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.locator(ROW_TITLES)).to_have_count(len(matching))
    first_result = page.locator(ROW_TITLES).first
    href = first_result.get_attribute("href")
    first_result.click()

    # then they see that track's details, its ISRC in its printed form
    expect(page).to_have_url(f"{live_server.url}{href}")
    opened = Track.objects.get(artist__email=INDIE, public_id=href.split("/")[2])
    assert word.lower() in opened.title.lower()
    expect(page.get_by_role("heading", level=1)).to_have_text(opened.title)
    isrc = page.locator(".facts div", has_text="ISRC").locator("dd")
    expect(isrc).to_have_text(opened.isrc_display)
    assert ISRC_SHAPE.match(isrc.inner_text())
    expect(page.get_by_text("Independent", exact=True)).to_be_visible()
    page.screenshot(path=artifacts_dir / "catalog-detail.png", full_page=True)

    # when they go to the upload page and choose a real WAV file
    page.get_by_role("link", name="Your tracks").click()
    page.get_by_role("link", name="Upload tracks").click()
    expect(page.get_by_role("heading", level=1, name="Upload tracks")).to_be_visible()
    wav = _write_wav(tmp_path / "Rainy Window Sketch.wav")
    page.get_by_label("Audio files").set_input_files(wav)
    page.screenshot(path=artifacts_dir / "catalog-upload.png", full_page=True)
    page.get_by_role("button", name="Upload", exact=True).click()

    # then the new track's page opens, with a success message
    uploaded = Track.objects.get(artist__email=INDIE, title="Rainy Window Sketch")
    expect(page).to_have_url(f"{live_server.url}{uploaded.get_absolute_url()}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Rainy Window Sketch")
    # (the page's flash messages: the track's delivery status is a live
    # region too)
    messages = page.get_by_role("status").filter(has=page.locator(".messages"))
    expect(messages).to_contain_text("Uploaded 1 track.")
    expect(page.get_by_role("link", name="Download the original")).to_be_visible()
    assert uploaded.duration_ms == 1000
    assert uploaded.license_class == LicenseClass.INDEPENDENT

    # and the list now counts 41
    page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="Tracks"
    ).click()
    expect(total).to_have_text("41 tracks")
    expect(page.locator(ROW_TITLES).first).to_have_text("Rainy Window Sketch")

    # when they try to upload a text file named like an MP3
    page.get_by_role("link", name="Upload tracks").click()
    fake = tmp_path / "fake.mp3"
    fake.write_text("This is not music, only words.\n" * 20)
    page.get_by_label("Audio files").set_input_files(fake)
    page.get_by_role("button", name="Upload", exact=True).click()

    # then it is refused, by name, and nothing is stored
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Nothing was uploaded.")
    expect(alert).to_contain_text("“fake.mp3” is not an audio file we accept")
    page.screenshot(path=artifacts_dir / "catalog-upload-refused.png", full_page=True)
    assert Track.objects.filter(artist__email=INDIE).count() == 41


def test_label_filter_is_kept_across_pages(page, live_server, artifacts_dir):
    # given the demo catalogue, where the signed artist has 30 label tracks and
    # 5 independent ones, plus 25 more label tracks: more than one page of them
    call_command("seed_demo")
    catalog_import(
        rows=demo_rows(
            email=SIGNED,
            prefix="SGX",
            count=25,
            license_class=LicenseClass.LABEL,
            labels=["Moonlight Records"],
        )
    )
    label_count = Track.objects.filter(
        artist__email=SIGNED, license_class=LicenseClass.LABEL
    ).count()
    assert label_count == 55

    # when the signed artist signs in and keeps only label-licensed tracks
    _sign_in(page, live_server.url, SIGNED)
    total = page.locator("#track-total")
    expect(total).to_have_text("60 tracks")
    page.get_by_label("Licence").select_option(label="Label-licensed")
    page.get_by_role("button", name="Apply", exact=True).click()

    # then the filter is in the URL and the first page shows 50 label tracks
    expect(total).to_have_text("55 tracks match your filters")
    assert _query(page.url)["license"] == ["label"]
    badges = page.locator("table.track-table tbody .badge")
    expect(badges).to_have_count(50)
    assert all(text.startswith("Label: ") for text in badges.all_inner_texts())

    # and the link to the next page keeps it
    next_link = page.get_by_role("link", name="Next 50")
    assert _query(next_link.get_attribute("href"))["license"] == ["label"]

    # when they follow it
    next_link.click()

    # then the second page has the other 5, the filter still applied
    expect(badges).to_have_count(5)
    assert _query(page.url)["license"] == ["label"]
    assert "cursor" in _query(page.url)
    expect(total).to_have_text("55 tracks match your filters")
    expect(page.get_by_label("Licence")).to_have_value("label")
    for name in ("First page", "Previous 50"):
        href = page.get_by_role("link", name=name).get_attribute("href")
        assert _query(href)["license"] == ["label"], name
    expect(page.get_by_role("link", name="Next 50")).to_have_count(0)
    page.screenshot(path=artifacts_dir / "catalog-list-page2.png", full_page=True)

    # when they search for something none of their label tracks is called
    page.get_by_label(SEARCH_LABEL).fill("zzz")
    page.get_by_role("button", name="Apply", exact=True).click()

    # then they are told so, with the way back, and can still upload
    expect(page.get_by_role("heading", name="No tracks match")).to_be_visible()
    expect(total).to_have_text("0 tracks match your filters")
    expect(page.get_by_role("link", name="show all your tracks")).to_be_visible()
    expect(page.get_by_role("link", name="Upload tracks")).to_have_count(1)
    expect(page.get_by_role("link", name="Clear filters")).to_be_visible()
    expect(page.get_by_role("navigation", name="Pages of tracks")).to_have_count(0)
    page.screenshot(path=artifacts_dir / "catalog-no-match.png", full_page=True)
