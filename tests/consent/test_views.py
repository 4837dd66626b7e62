import html
import json
import re
from collections import Counter
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from catalog.models import Track
from catalog.services import stats_apply, tracks_insert_bulk
from consent.models import (
    ArtistDefault,
    BulkJob,
    LedgerEntry,
    PolicyRule,
    PolicyVersion,
    Receipt,
    TrackConsent,
)
from consent.policy import SHIPPED_RULES
from consent.rows import LOCK_ICON
from consent.services import (
    bulk_change_start,
    bulk_job_run,
    bulk_jobs_resume,
    consent_bulk_set_chunk,
    consent_set,
    trackconsent_create_missing,
)
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING
from tests.dbstate import database_state
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/tracks/"
USE_NAMES = {
    GENAI: "Generative AI training",
    TRAINING: "Other AI training",
    INFERENCE: "Input to AI features",
    MINING: "Data mining",
}
LABEL_REASON = "Label-licensed: the platform does not allow AI training of this track"
# The session, the user, one query for the policy, the artist's defaults and
# the list's version (the cached page's key), and when the page is not cached:
# the page of tracks, its total and the consent rows of the page's tracks; then
# one for the rows' propagation status, never cached. The same whatever the
# number of tracks; a cached page costs the first three and the status.
LIST_QUERIES = 7
CACHED_LIST_QUERIES = 4

_SELECT = re.compile(r'id="sel-([A-Za-z0-9_-]+)"')
# Each unlocked control: its group's name (the use and the track) and the
# answer in force, as the name says it.
_SWITCH = re.compile(
    r'<div class="answers" role="group" '
    r'aria-label="([^"]+?): (Yes|No|My default: Yes|My default: No)"'
)

_HISTORY_VERSION = re.compile(r'<td class="mono" title="SHA-256 [0-9a-f]{64}">#(\d+) ')


def _tbody(response) -> str:
    return response.text.split('<tbody hx-target="closest td"', 1)[1].split(
        "</tbody>", 1
    )[0]


def listed(response) -> list[str]:
    return _SELECT.findall(response.text)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def consent_of(track, use) -> tuple[str, bool]:
    row = TrackConsent.objects.get(track=track, use=use)
    return row.decision, row.eligible


def consent_url(track) -> str:
    return f"/tracks/{track.public_id}/consent/"


# --- the list's switches --------------------------------------------------------------


def test_each_row_has_four_switches_with_accessible_names(
    signed_in, artist, make_track
):
    track = make_track(artist=artist, title="Night Drive")
    consent_set(track=track, use=TRAINING, state="granted", actor=artist, source="web")

    response = signed_in.get(LIST)

    assert response.status_code == 200
    switches = _SWITCH.findall(response.text)
    assert switches == [
        ("Generative AI training for “Night Drive”", "My default: No"),
        ("Other AI training for “Night Drive”", "Yes"),
        ("Input to AI features for “Night Drive”", "My default: No"),
        ("Data mining for “Night Drive”", "My default: No"),
    ]
    cell = f'<td id="c-{track.public_id}-{TRAINING}" class="switch-cell">'
    assert cell in response.text
    # every answer swaps its own cell, as the table's body says
    assert '<tbody hx-target="closest td" hx-swap="outerHTML">' in response.text
    # the same three answers as the track page; the one in force is pressed
    answers = re.findall(
        r'value="[^"|]+\|[a-z-]+\|(\w+)" hx-post="/tracks/switch/" '
        r'aria-pressed="(true|false)">([^<]+)</button>',
        response.text,
    )
    assert [(state, text) for state, _, text in answers] == [
        ("granted", "Yes"),
        ("denied", "No"),
        ("default", "My default: No"),
    ] * 4
    pressed = [state for state, is_pressed, _ in answers if is_pressed == "true"]
    assert pressed == ["default", "granted", "default", "default"]
    assert (
        'aria-pressed="true"'
        in response.text.split(f'id="s-{track.public_id}-{TRAINING}-granted"')[1].split(
            ">"
        )[0]
    )
    assert response.text.count('<span class="eligible-mark">Eligible</span>') == 1


def test_label_tracks_show_locked_controls_with_the_reason(
    signed_in, artist, make_track
):
    track = make_track(artist=artist, title="Tide", signed=True)

    response = signed_in.get(LIST)

    assert _SWITCH.findall(response.text) == []
    assert f'<span class="locked-reason">{LOCK_ICON} {LABEL_REASON}</span>' in (
        response.text
    )
    for use, name in USE_NAMES.items():
        assert f'id="c-{track.public_id}-{use}"' in response.text
        assert (
            f'role="img" aria-label="{name} for “Tide”: not allowed. '
            f"Label-licensed: the platform does not allow" in response.text
        )
    assert response.text.count("Not allowed</span>") == 4
    assert f'action="{consent_url(track)}"' not in response.text


def test_a_list_switch_without_javascript_saves_and_redirects_back(
    signed_in, artist, make_track
):
    # given the list's switch form (no HTMX): the clicked button posts ``set``
    track = make_track(artist=artist, title="Night Drive")

    response = signed_in.post(
        "/tracks/switch/",
        {"set": f"{track.public_id}|{GENAI}|granted", "next": f"{LIST}?sort=title"},
    )

    assert response.status_code == 302
    # back to the row it came from
    assert response["Location"] == f"{LIST}?sort=title#r-{track.public_id}"
    assert f'<tr id="r-{track.public_id}">' in signed_in.get(LIST).text
    assert consent_of(track, GENAI) == ("granted", True)


def test_a_list_switch_with_htmx_returns_the_cell(signed_in, artist, make_track):
    track = make_track(artist=artist, title="Night Drive")

    response = signed_in.post(
        "/tracks/switch/",
        {"set": f"{track.public_id}|{GENAI}|granted"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert response.text.startswith(f'<td id="c-{track.public_id}-{GENAI}"')
    assert _SWITCH.findall(response.text) == [
        ("Generative AI training for “Night Drive”", "Yes")
    ]


@pytest.mark.parametrize(
    "value", ["", "nonsense", "{pid}|face-scan|granted", "{pid}|genai-training|maybe"]
)
def test_a_malformed_list_switch_changes_nothing(signed_in, artist, make_track, value):
    track = make_track(artist=artist)

    response = signed_in.post(
        "/tracks/switch/", {"set": value.format(pid=track.public_id)}
    )

    assert response.status_code in (302, 404)
    assert LedgerEntry.objects.count() == 0
    assert consent_of(track, GENAI) == ("", False)


def test_a_list_switch_on_another_artists_track_is_a_404(signed_in, make_track):
    other_track = make_track(artist=UserFactory())

    response = signed_in.post(
        "/tracks/switch/", {"set": f"{other_track.public_id}|{GENAI}|granted"}
    )

    assert response.status_code == 404
    assert LedgerEntry.objects.count() == 0


def test_an_htmx_switch_returns_the_cell_and_saves(signed_in, artist, make_track):
    track = make_track(artist=artist, title="Night Drive")

    response = signed_in.post(
        consent_url(track),
        {"use": GENAI, "state": "granted", "next": LIST},
        HTTP_HX_REQUEST="true",
    )

    # then the partial's root is the swap target, showing the new state
    assert response.status_code == 200
    text = response.text
    assert text.startswith(f'<td id="c-{track.public_id}-{GENAI}" class="switch-cell">')
    assert text.rstrip().endswith("</td>")
    assert _SWITCH.findall(text) == [
        ("Generative AI training for “Night Drive”", "Yes")
    ]
    assert (
        '<span class="visually-hidden" role="status">Generative AI training for '
        "“Night Drive” is now Yes, eligible. Saved.</span>" in text
    )
    # and the change is saved and logged as made on the web
    assert consent_of(track, GENAI) == ("granted", True)
    entry = LedgerEntry.objects.get(track=track)
    assert (entry.source, entry.actor_id, entry.new_state) == (
        "web",
        artist.pk,
        "granted",
    )


def test_a_plain_post_redirects_back_to_next(signed_in, artist, make_track):
    track = make_track(artist=artist, title="Night Drive")
    back = "/tracks/?use=ai-training&state=default"

    response = signed_in.post(
        consent_url(track), {"use": TRAINING, "state": "granted", "next": back}
    )

    assert response.status_code == 302
    assert response["Location"] == back
    assert consent_of(track, TRAINING) == ("granted", True)
    assert messages_of(response) == [
        "Other AI training for “Night Drive” is now Yes. Saved."
    ]


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/tracks/", "http://testserver.evil/"],
)
def test_an_off_site_next_is_ignored(signed_in, artist, make_track, next_url):
    track = make_track(artist=artist)

    response = signed_in.post(
        consent_url(track), {"use": TRAINING, "state": "granted", "next": next_url}
    )

    assert response.status_code == 302
    assert response["Location"] == f"/tracks/{track.public_id}/#use-{TRAINING}"
    assert consent_of(track, TRAINING) == ("granted", True)


@pytest.mark.parametrize("htmx", [True, False])
def test_another_artists_track_is_a_404_and_nothing_is_written(
    signed_in, make_track, htmx
):
    track = make_track(artist=UserFactory())
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}

    response = signed_in.post(
        consent_url(track), {"use": GENAI, "state": "granted"}, **headers
    )

    assert response.status_code == 404
    assert consent_of(track, GENAI) == ("", False)
    assert LedgerEntry.objects.count() == 0
    assert Receipt.objects.count() == 0


@pytest.mark.parametrize(
    "data",
    [{"use": "face-recognition", "state": "granted"}, {"use": GENAI, "state": "yes"}],
)
def test_a_bad_use_or_state_is_reported_and_nothing_is_written(
    signed_in, artist, make_track, data
):
    track = make_track(artist=artist)

    response = signed_in.post(consent_url(track), {**data, "next": LIST})
    htmx = signed_in.post(consent_url(track), data, HTTP_HX_REQUEST="true")

    assert response.status_code == 302
    assert response["Location"] == LIST
    assert messages_of(response) == [
        "That change was not understood; nothing was changed."
    ]
    assert htmx.status_code == 400
    assert htmx.text == "That change was not understood; nothing was changed."
    assert (
        list(
            TrackConsent.objects.filter(track=track).values_list("decision", flat=True)
        )
        == [""] * 4
    )
    assert LedgerEntry.objects.count() == 0
    assert Track.objects.get(pk=track.pk).consent_version == 0


def test_a_locked_use_is_refused_and_nothing_is_written(signed_in, artist, make_track):
    track = make_track(artist=artist, signed=True)

    htmx = signed_in.post(
        consent_url(track), {"use": GENAI, "state": "granted"}, HTTP_HX_REQUEST="true"
    )
    plain = signed_in.post(
        consent_url(track), {"use": GENAI, "state": "granted", "next": LIST}
    )

    assert htmx.status_code == 409
    assert htmx.text == "The policy does not allow this use of this track."
    assert plain.status_code == 302
    assert messages_of(plain) == ["The policy does not allow this use of this track."]
    assert consent_of(track, GENAI) == ("", False)
    assert LedgerEntry.objects.count() == 0


def test_switching_needs_a_post_and_a_sign_in(client, artist, make_track):
    track = make_track(artist=artist)

    assert client.post(consent_url(track), {"use": GENAI, "state": "granted"})[
        "Location"
    ].startswith("/accounts/login/")
    client.force_login(artist)
    assert client.get(consent_url(track)).status_code == 405
    assert LedgerEntry.objects.count() == 0


# --- filters --------------------------------------------------------------------------


@pytest.fixture
def filtered(artist, make_track):
    granted = make_track(artist=artist, title="Granted")
    denied = make_track(artist=artist, title="Denied")
    silent = make_track(artist=artist, title="Silent")
    label = make_track(artist=artist, title="Label", signed=True)
    make_track(artist=UserFactory(), title="Not mine")
    consent_set(
        track=granted, use=TRAINING, state="granted", actor=artist, source="web"
    )
    consent_set(track=denied, use=TRAINING, state="denied", actor=artist, source="web")
    return {"granted": granted, "denied": denied, "silent": silent, "label": label}


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", ["label", "silent", "denied", "granted"]),
        ("use=ai-training&state=granted", ["granted"]),
        ("use=ai-training&state=denied", ["denied"]),
        ("use=ai-training&state=default", ["label", "silent"]),
        ("use=ai-training&eligible=yes", ["granted"]),
        ("use=ai-training&eligible=no", ["label", "silent", "denied"]),
        ("use=genai-training&eligible=yes", []),
        ("eligible=yes", ["granted"]),
        ("eligible=no", ["label", "silent", "denied"]),
        ("use=ai-training&state=default&license=independent", ["silent"]),
    ],
)
def test_filters_narrow_the_list(signed_in, filtered, query, expected):
    response = signed_in.get(f"{LIST}?{query}")

    assert response.status_code == 200
    assert listed(response) == [filtered[name].public_id for name in expected]


def test_the_total_counts_what_the_filters_match(signed_in, filtered):
    response = signed_in.get(f"{LIST}?use=ai-training&state=default")

    assert re.search(r'id="track-total">\s*2 tracks match your filters', response.text)


def test_a_state_without_a_use_is_reported_and_ignored(signed_in, filtered):
    response = signed_in.get(f"{LIST}?state=granted")

    assert "Some filters were not understood and were ignored" in response.text
    assert "Choose the use this answer is about." in response.text
    assert len(listed(response)) == 4


def test_a_rejected_filter_keeps_the_valid_ones(signed_in, filtered):
    # the state is refused (no use given), the eligibility filter still applies
    response = signed_in.get(f"{LIST}?state=granted&eligible=yes")

    assert "Choose the use this answer is about." in response.text
    assert listed(response) == [filtered["granted"].public_id]


def _many_tracks(artist, count: int) -> None:
    """``count`` tracks written as the import writes them (one COPY), each
    with its consent rows, and one decision."""
    now = timezone.now()
    tracks_insert_bulk(
        rows=[
            {
                "artist_id": artist.pk,
                "title": f"Track {number:04d}",
                "license_class": "independent",
                "uploaded_at": now - timedelta(minutes=number),
                "updated_at": now,
            }
            for number in range(count)
        ]
    )
    stats_apply(deltas=Counter({(artist.pk, "independent"): count}))
    track_ids = list(Track.objects.filter(artist=artist).values_list("pk", flat=True))
    trackconsent_create_missing(track_ids=track_ids)
    consent_set(
        track=Track.objects.get(pk=track_ids[0]),
        use=GENAI,
        state="granted",
        actor=artist,
        source="web",
    )


@pytest.mark.parametrize("count", [10, 200])
def test_the_list_costs_the_same_queries_at_any_size(
    signed_in, artist, count, django_assert_num_queries
):
    _many_tracks(artist, count)

    with django_assert_num_queries(LIST_QUERIES):
        response = signed_in.get(LIST)

    assert len(listed(response)) == min(count, 50)
    assert len(_SWITCH.findall(response.text)) == 4 * min(count, 50)

    # the same page again comes from the cache, identical
    with django_assert_num_queries(CACHED_LIST_QUERIES):
        again = signed_in.get(LIST)
    assert listed(again) == listed(response)


def test_the_list_escapes_titles_when_built_and_when_cached(
    signed_in, artist, make_track, django_assert_num_queries
):
    # given a track whose title is markup
    make_track(artist=artist, title="<script>alert(1)</script>")

    # when the list is built, then served from the cache
    built = signed_in.get(LIST)
    with django_assert_num_queries(CACHED_LIST_QUERIES):
        cached = signed_in.get(LIST)

    # then both show the title as text, once escaped, and the rows as markup
    for response in (built, cached):
        assert "<script>alert(1)" not in response.text
        assert "&amp;lt;script" not in response.text
        assert ">&lt;script&gt;alert(1)&lt;/script&gt;</a>" in response.text
        assert len(_SWITCH.findall(response.text)) == 4
    assert _tbody(cached) == _tbody(built)


def test_an_htmx_switch_answers_with_the_title_escaped(signed_in, artist, make_track):
    track = make_track(artist=artist, title='<img src=x onerror="alert(1)">')

    response = signed_in.post(
        "/tracks/switch/",
        {"set": f"{track.public_id}|{GENAI}|granted"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert "<img" not in response.text
    assert _SWITCH.findall(response.text) == [
        (
            "Generative AI training for “&lt;img src=x "
            "onerror=&quot;alert(1)&quot;&gt;”",
            "Yes",
        )
    ]


def test_htmx_errors_are_plain_text(signed_in, artist, make_track):
    track = make_track(artist=artist, signed=True)

    locked = signed_in.post(
        "/tracks/switch/",
        {"set": f"{track.public_id}|{GENAI}|granted"},
        HTTP_HX_REQUEST="true",
    )
    garbled = signed_in.post(
        "/tracks/switch/", {"set": "<b>|nonsense|"}, HTTP_HX_REQUEST="true"
    )

    assert (locked.status_code, locked["Content-Type"]) == (
        409,
        "text/plain; charset=utf-8",
    )
    assert (garbled.status_code, garbled["Content-Type"]) == (
        400,
        "text/plain; charset=utf-8",
    )


def test_a_cached_list_is_never_served_after_a_change(signed_in, artist, make_track):
    # given a list page that is cached
    track = make_track(artist=artist, title="Night Drive")
    assert _SWITCH.findall(signed_in.get(LIST).text)[0][1] == "My default: No"

    # when a switch changes, a default changes, or the policy changes
    signed_in.post("/tracks/switch/", {"set": f"{track.public_id}|{GENAI}|granted"})
    after_switch = _SWITCH.findall(signed_in.get(LIST).text)
    ArtistDefault.objects.create(artist=artist, use=MINING, decision="granted")
    after_default = signed_in.get(LIST).text

    # then every read shows the new state
    assert after_switch[0][1] == "Yes"
    assert "Data mining for “Night Drive”: My default: Yes" in after_default


@pytest.mark.parametrize("count", [10, 200])
def test_a_filtered_list_costs_the_same_queries_at_any_size(
    signed_in, artist, count, django_assert_num_queries
):
    _many_tracks(artist, count)

    # a consent filter counts the matches directly instead of the kept total
    with django_assert_num_queries(LIST_QUERIES):
        response = signed_in.get(f"{LIST}?use=genai-training&state=default")

    assert len(listed(response)) == min(count - 1, 50)


# --- bulk -----------------------------------------------------------------------------


def test_bulk_change_of_selected_tracks(signed_in, artist, make_track):
    mine = [make_track(artist=artist), make_track(artist=artist)]
    label = make_track(artist=artist, signed=True)
    not_mine = make_track(artist=UserFactory())

    response = signed_in.post(
        "/tracks/bulk/",
        {
            "use": MINING,
            "state": "granted",
            "scope": "selected",
            "tracks": [t.public_id for t in [*mine, label, not_mine]],
            "next": LIST,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == LIST
    assert messages_of(response) == [
        "Data mining set to Yes: 2 tracks changed, 0 already set, 1 locked by the "
        "policy."
    ]
    for track in mine:
        assert consent_of(track, MINING) == ("granted", True)
    assert consent_of(not_mine, MINING) == ("", False)
    assert Receipt.objects.filter(artist=artist).count() == 1


def test_bulk_change_of_all_that_match(signed_in, artist, filtered):
    response = signed_in.post(
        "/tracks/bulk/",
        {
            "use": TRAINING,
            "state": "granted",
            "scope": "all",
            "confirmed": "yes",
            "f_use": TRAINING,
            "f_state": "default",
            "next": f"{LIST}?use=ai-training&state=default",
        },
    )

    assert response.status_code == 302
    assert messages_of(response) == [
        "Other AI training set to Yes: 1 track changed, 0 already set, 1 locked by "
        "the policy."
    ]
    assert consent_of(filtered["silent"], TRAINING) == ("granted", True)
    assert consent_of(filtered["denied"], TRAINING) == ("denied", False)


def test_bulk_change_with_nothing_selected_is_reported(signed_in, artist, make_track):
    make_track(artist=artist)

    response = signed_in.post(
        "/tracks/bulk/",
        {"use": MINING, "state": "granted", "scope": "selected", "next": LIST},
    )

    assert response.status_code == 302
    assert messages_of(response) == [
        "Choose at least one track, or choose “All matching tracks”."
    ]
    assert BulkJob.objects.count() == 0
    assert LedgerEntry.objects.count() == 0


def test_a_large_bulk_change_shows_progress_until_done(
    signed_in,
    artist,
    make_track,
    settings,
    task_queue,
    django_capture_on_commit_callbacks,
):
    settings.REFRAIN_BULK_INLINE_LIMIT = 2
    tracks = [make_track(artist=artist) for _ in range(3)]
    back = f"{LIST}?use=data-mining&state=default"

    # when more tracks than the inline limit are changed
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            "/tracks/bulk/",
            {
                "use": MINING,
                "state": "granted",
                "scope": "all",
                "confirmed": "yes",
                "f_use": MINING,
                "f_state": "default",
                "next": back,
            },
        )

    # then the artist is sent to the job's page, which links back to the list
    job = BulkJob.objects.get()
    status_url = f"/tracks/bulk/{job.public_id}/"
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == status_url
    assert parse_qs(location.query) == {"next": [back]}
    assert task_queue.sent == [("run_bulk_change", (job.pk,))]
    page = signed_in.get(response["Location"])
    assert page.status_code == 200
    assert '<progress id="bulk-bar" max="3" value="0">0%</progress>' in page.text
    assert 'hx-trigger="every 1s"' in page.text
    assert f'<a href="{html.escape(back)}">Back to your tracks</a>' in page.text

    # the HTMX poll gets the progress partial, until the job is done
    partial = signed_in.get(status_url, HTTP_HX_REQUEST="true")
    assert partial.text.startswith('<div id="bulk-progress" ')
    assert "Waiting to start: 0 of 3" in partial.text
    bulk_job_run(job_id=job.pk)
    done = signed_in.get(status_url, HTTP_HX_REQUEST="true")
    assert done.text.startswith('<div id="bulk-progress" >')
    assert "hx-trigger" not in done.text
    assert "Done: 3 of 3" in done.text
    assert '<progress id="bulk-bar" max="3" value="3">100%</progress>' in done.text
    assert "Data mining set to Yes: 3 tracks changed, 0 already set." in done.text
    job.refresh_from_db()
    assert f'href="/receipts/{job.receipt.public_id}.json"' in done.text
    for track in tracks:
        assert consent_of(track, MINING) == ("granted", True)


def test_the_bulk_page_says_what_is_saved_while_waiting_running_and_stopped(
    signed_in, artist, make_track, settings
):
    # given a background job over five tracks, two done before its worker died
    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    tracks = sorted((make_track(artist=artist) for _ in range(5)), key=lambda t: t.pk)
    job = bulk_change_start(
        artist=artist,
        use=MINING,
        state="granted",
        actor=artist,
        track_public_ids=[t.public_id for t in tracks],
    )
    url = f"/tracks/bulk/{job.public_id}/"
    waiting = signed_in.get(url, HTTP_HX_REQUEST="true").text
    assert "Waiting to start: 0 of 5" in waiting
    assert (
        "Waiting for a worker — 0 of 5 tracks changed so far; it starts "
        "automatically." in waiting
    )
    consent_bulk_set_chunk(
        artist=artist,
        track_ids=[t.pk for t in tracks[:2]],
        use=MINING,
        state="granted",
        actor=artist,
        source="bulk",
        request_id=job.request_id,
    )
    BulkJob.objects.filter(pk=job.pk).update(
        status="running",
        attempts=1,
        cursor=tracks[1].pk,
        processed=2,
        changed=2,
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )

    # while its lease is live the page says it is in progress
    running = signed_in.get(url, HTTP_HX_REQUEST="true").text
    assert "In progress: 2 of 5" in running
    assert "2 changed so far." in running
    assert 'hx-trigger="every 1s"' in running

    # when the lease runs out, it says the job waits and resumes by itself
    BulkJob.objects.filter(pk=job.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    stalled = signed_in.get(url, HTTP_HX_REQUEST="true").text
    assert "Waiting for a worker: 2 of 5" in stalled
    assert (
        "Waiting for a worker — 2 of 5 tracks changed so far; it resumes "
        "automatically." in stalled
    )
    assert 'hx-trigger="every 1s"' in stalled

    # when it is out of attempts, it says it stopped and what was saved
    settings.REFRAIN_BULK_MAX_ATTEMPTS = 1
    bulk_jobs_resume()
    job.refresh_from_db()
    stopped = signed_in.get(url).text
    assert "Stopped: 2 of 5" in stopped
    assert (
        "Stopped after 1 attempt: 2 tracks changed and saved before it stopped "
        "(the receipt lists them); 3 not reached, left as they were. Start the "
        "change again to finish it." in stopped
    )
    assert f'href="/receipts/{job.receipt.public_id}.json"' in stopped
    assert "hx-trigger" not in stopped


def test_another_artists_bulk_job_is_a_404(signed_in, make_track, settings):
    from consent.services import bulk_change_start

    settings.REFRAIN_BULK_INLINE_LIMIT = 0
    other = UserFactory()
    track = make_track(artist=other)
    job = bulk_change_start(
        artist=other,
        use=MINING,
        state="granted",
        actor=other,
        track_public_ids=[track.public_id],
    )

    assert signed_in.get(f"/tracks/bulk/{job.public_id}/").status_code == 404


# --- the track page -------------------------------------------------------------------


def test_the_track_page_says_why_each_use_is_or_is_not_eligible(
    signed_in, artist, make_track
):
    ArtistDefault.objects.create(artist=artist, use=MINING, decision="granted")
    track = make_track(artist=artist, title="Night Drive")
    consent_set(track=track, use=GENAI, state="granted", actor=artist, source="web")
    consent_set(track=track, use=TRAINING, state="denied", actor=artist, source="web")

    response = signed_in.get(f"/tracks/{track.public_id}/")

    assert response.status_code == 200
    whys = re.findall(r'<p class="why why-(yes|no)">([^<]+)</p>', response.text)
    assert whys == [
        (
            "yes",
            "Eligible: you said yes for this track, and the policy allows it with "
            "your yes.",
        ),
        (
            "no",
            "Not eligible: the policy needs your yes, and you said no for this track.",
        ),
        (
            "no",
            "Not eligible: the policy needs your yes, and you have not said yes (no "
            "default set).",
        ),
        (
            "yes",
            "Eligible: your default for this use is yes, and the policy allows it "
            "with your yes.",
        ),
    ]
    assert (
        response.text.count("Policy for this track: Only with your yes (opt-in).") == 4
    )


def test_the_track_page_of_a_label_track_shows_the_lock(signed_in, artist, make_track):
    track = make_track(artist=artist, signed=True)

    response = signed_in.get(f"/tracks/{track.public_id}/")

    assert (
        response.text.count(f'<p class="locked-reason">{LOCK_ICON} Label-licensed') == 4
    )
    assert (
        response.text.count("Policy for this track: Not allowed by the platform.") == 4
    )
    assert 'name="state"' not in response.text


def test_the_history_is_newest_first_and_paginated_by_20(signed_in, artist, make_track):
    track = make_track(artist=artist)
    for number in range(25):
        consent_set(
            track=track,
            use=GENAI,
            state="granted" if number % 2 == 0 else "denied",
            actor=artist,
            source="web",
        )

    first = signed_in.get(f"/tracks/{track.public_id}/")
    second = signed_in.get(f"/tracks/{track.public_id}/?page=2")

    assert [int(v) for v in _HISTORY_VERSION.findall(first.text)] == list(
        range(25, 5, -1)
    )
    assert [int(v) for v in _HISTORY_VERSION.findall(second.text)] == [5, 4, 3, 2, 1]
    assert "Page 1 of 2" in first.text
    assert '<a href="?page=2">Older →</a>' in first.text
    assert '<a href="?page=1">← Newer</a>' in second.text


def test_the_track_page_lists_its_receipts(signed_in, artist, make_track):
    track = make_track(artist=artist)
    other_track = make_track(artist=artist)
    receipts = [
        consent_set(
            track=track, use=use, state="granted", actor=artist, source="web"
        ).receipt
        for use in (GENAI, MINING)
    ]
    elsewhere = consent_set(
        track=other_track, use=GENAI, state="granted", actor=artist, source="web"
    ).receipt

    response = signed_in.get(f"/tracks/{track.public_id}/")

    links = re.findall(r'href="/receipts/([0-9a-f-]+)\.json" download', response.text)
    assert sorted(links) == sorted(str(r.public_id) for r in receipts)
    assert str(elsewhere.public_id) not in response.text


def test_the_track_page_links_its_public_page(signed_in, artist, make_track, client):
    track = make_track(artist=artist)

    response = signed_in.get(f"/tracks/{track.public_id}/")

    assert f'href="/t/{track.public_id}/"' in response.text
    assert client.get(f"/t/{track.public_id}/").status_code == 200


def test_another_artists_track_page_is_a_404(signed_in, make_track):
    track = make_track(artist=UserFactory())

    assert signed_in.get(f"/tracks/{track.public_id}/").status_code == 404


# --- receipts -------------------------------------------------------------------------


def test_a_receipt_downloads_for_its_owner_only(client, artist, make_track):
    track = make_track(artist=artist)
    receipt = consent_set(
        track=track, use=GENAI, state="granted", actor=artist, source="web"
    ).receipt
    url = f"/receipts/{receipt.public_id}.json"

    client.force_login(artist)
    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="refrain-receipt-{receipt.public_id}.json"'
    )
    assert response["Cache-Control"] == "private, no-store"
    assert json.loads(response.content) == receipt.payload

    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url)["Location"].startswith("/accounts/login/")


# --- defaults -------------------------------------------------------------------------


def test_the_settings_page_shows_the_defaults_and_tracks_on_default(
    signed_in, artist, make_track
):
    make_track(artist=artist)
    decided = make_track(artist=artist)
    consent_set(track=decided, use=GENAI, state="granted", actor=artist, source="web")

    response = signed_in.get("/settings/consent/")

    assert response.status_code == 200
    assert response.text.count("2 of your tracks are on default for this.") == 3
    assert response.text.count("1 of your tracks is on default for this.") == 1


def _defaults_form(**overrides) -> dict:
    return {GENAI: "denied", TRAINING: "denied", INFERENCE: "denied",
            MINING: "denied", **overrides}  # fmt: skip


def test_saving_defaults_applied_to_tracks_on_default(signed_in, artist, make_track):
    on_default = make_track(artist=artist, title="On default")
    decided = make_track(artist=artist)
    consent_set(track=decided, use=TRAINING, state="denied", actor=artist, source="web")

    response = signed_in.post(
        "/settings/consent/",
        {**_defaults_form(**{TRAINING: "granted"}), "apply_to_existing": "on"},
    )

    assert response.status_code == 302
    assert response["Location"] == "/settings/consent/"
    assert messages_of(response) == [
        "Your defaults were saved. 1 track changed with them."
    ]
    assert dict(
        ArtistDefault.objects.filter(artist=artist).values_list("use", "decision")
    ) == _defaults_form(**{TRAINING: "granted"})
    assert consent_of(on_default, TRAINING) == ("", True)
    assert consent_of(decided, TRAINING) == ("denied", False)
    entry = LedgerEntry.objects.get(track=on_default)
    assert entry.note == "follows your new default"


def test_saving_defaults_for_new_tracks_only(signed_in, artist, make_track):
    on_default = make_track(artist=artist)
    ArtistDefault.objects.bulk_create(
        ArtistDefault(artist=artist, use=use, decision="denied") for use in USE_NAMES
    )

    response = signed_in.post(
        "/settings/consent/", _defaults_form(**{TRAINING: "granted"})
    )

    assert messages_of(response) == [
        "Your defaults were saved. 1 track kept their answer."
    ]
    assert consent_of(on_default, TRAINING) == ("denied", False)
    assert consent_of(make_track(artist=artist), TRAINING) == ("", True)


def test_saving_unchanged_defaults_says_so(signed_in, artist, make_track):
    make_track(artist=artist)
    ArtistDefault.objects.bulk_create(
        ArtistDefault(artist=artist, use=use, decision="denied") for use in USE_NAMES
    )

    response = signed_in.post(
        "/settings/consent/", {**_defaults_form(), "apply_to_existing": "on"}
    )

    assert messages_of(response) == ["Nothing changed."]
    assert LedgerEntry.objects.count() == 0


# --- policy (staff) -------------------------------------------------------------------


def _policy_form(changed: dict, reason: str = "Opt-out for data mining") -> dict:
    rules = {**SHIPPED_RULES, **changed}
    return {
        "reason": reason,
        **{f"{cls}__{use}": rule for (cls, use), rule in rules.items()},
    }


def test_the_policy_editor_is_for_policy_admins_only(
    client, auditor, artist, policy_admin
):
    client.force_login(auditor)
    assert client.get("/audit/").status_code == 200
    assert "Change the policy" not in client.get("/audit/").text
    assert client.get("/audit/policy/").status_code == 403
    refused = client.post(
        "/audit/policy/",
        {**_policy_form({("independent", MINING): "opt_out"}), "confirm": "1"},
    )
    assert refused.status_code == 403
    assert PolicyVersion.objects.count() == 1

    client.force_login(artist)
    assert client.get("/audit/policy/").status_code == 403

    client.force_login(policy_admin)
    assert 'href="/audit/policy/">Change the policy</a>' in client.get("/audit/").text
    assert client.get("/audit/policy/").status_code == 200


def test_the_policy_preview_shows_counts_and_saves_nothing(
    client, policy_admin, make_track
):
    artist = UserFactory()
    make_track(artist=artist)
    granted = make_track(artist=artist)
    consent_set(track=granted, use=MINING, state="denied", actor=artist, source="web")
    client.force_login(policy_admin)

    response = client.post(
        "/audit/policy/", _policy_form({("independent", MINING): "opt_out"})
    )

    assert response.status_code == 200
    assert (
        '<tr><th scope="row">Independent: Data mining</th>'
        "<td>Opt-in: eligible only with the artist&#x27;s yes → Opt-out: eligible "
        "unless the artist says no</td><td>1</td><td>0</td></tr>" in response.text
    )
    assert 'name="confirm"' in response.text
    assert PolicyVersion.objects.count() == 1


def test_confirming_saves_a_new_version_and_starts_the_re_evaluation(
    client, policy_admin, task_queue, django_capture_on_commit_callbacks
):
    client.force_login(policy_admin)
    form = _policy_form({("independent", MINING): "opt_out"})
    previewed = _previewed(client.post("/audit/policy/", form))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/audit/policy/", {**form, "previewed": previewed, "confirm": "1"}
        )

    assert response.status_code == 302
    assert response["Location"] == "/audit/"
    version = PolicyVersion.objects.get(number=2)
    assert (version.created_by, version.reason) == (
        policy_admin,
        "Opt-out for data mining",
    )
    assert dict(
        ((r.license_class, r.use), r.rule)
        for r in PolicyRule.objects.filter(version=version)
    ) == {**SHIPPED_RULES, ("independent", MINING): "opt_out"}
    assert task_queue.sent == [("apply_policy", (version.pk,))]
    assert messages_of(response)[0].startswith("Policy v2 is saved.")


def _previewed(response) -> str:
    match = re.search(r'name="previewed" value="([0-9a-f]+)"', response.text)
    assert match, "the preview offers no save"
    return match.group(1)


def test_rules_changed_after_the_preview_are_previewed_again_not_saved(
    client, policy_admin, task_queue
):
    # given a preview of one change
    client.force_login(policy_admin)
    previewed = _previewed(
        client.post(
            "/audit/policy/", _policy_form({("independent", MINING): "opt_out"})
        )
    )

    # when another rule is changed before saving
    response = client.post(
        "/audit/policy/",
        {
            **_policy_form({("label", MINING): "opt_in"}),
            "previewed": previewed,
            "confirm": "1",
        },
    )

    # then nothing is saved and the preview of the new rules is shown
    assert response.status_code == 200
    assert PolicyVersion.objects.count() == 1
    assert task_queue.sent == []
    assert "The rules changed after the preview." in response.text
    assert _previewed(response) != previewed


def test_a_policy_without_a_reason_is_refused(client, policy_admin):
    client.force_login(policy_admin)

    response = client.post(
        "/audit/policy/",
        {**_policy_form({("label", MINING): "opt_in"}, reason=""), "confirm": "1"},
    )

    assert response.status_code == 200
    assert "This field is required." in response.text
    assert PolicyVersion.objects.count() == 1


def test_changing_every_track_that_matches_asks_first(signed_in, artist, filtered):
    data = {
        "use": TRAINING,
        "state": "granted",
        "scope": "all",
        "f_use": TRAINING,
        "f_state": "default",
        "next": f"{LIST}?use=ai-training&state=default",
    }
    before = database_state()

    # when the artist asks to change every track that matches
    response = signed_in.post("/tracks/bulk/", data)

    # then they are asked, with the count and what would change, and nothing
    # has changed yet
    assert response.status_code == 200
    page = response.text
    assert "<h1>Change 2 tracks?</h1>" in page
    assert "Nothing has changed yet." in page
    assert '<input type="hidden" name="confirmed" value="yes">' in page
    assert '<input type="hidden" name="f_state" value="default">' in page
    assert f'href="{LIST}?use=ai-training&amp;state=default">Cancel</a>' in page
    assert database_state() == before

    # when they confirm, the change is made
    confirmed = signed_in.post("/tracks/bulk/", {**data, "confirmed": "yes"})
    assert confirmed.status_code == 302
    assert consent_of(filtered["silent"], TRAINING) == ("granted", True)
