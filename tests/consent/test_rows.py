"""The list's HTML, built in Python: every value escaped unless it is already a
``SafeString``, and the result marked safe so templates print it as is."""

import pytest
from django.utils.safestring import SafeString

from catalog.rows import TrackRow
from consent.policy import Policy
from consent.rows import (
    LOCK_ICON,
    cell_html,
    consent_cell,
    consent_rows,
    row_html,
    rows_html,
    switch_url,
)
from consent.uses import USE_ORDER

GENAI = "genai-training"
HOSTILE = "<b>\"Loud\" & 'proud'</b>"
ESCAPED = "&lt;b&gt;&quot;Loud&quot; &amp; &#x27;proud&#x27;&lt;/b&gt;"
POLICY = Policy(
    number=1,
    rules={
        **{("independent", use): "opt_in" for use in USE_ORDER},
        **{("label", use): "prohibited" for use in USE_ORDER},
    },
)


def _cell(*, license_class="independent", decision="granted", eligible=True):
    return consent_cell(
        public_id="T1",
        title=HOSTILE,
        license_class=license_class,
        use=GENAI,
        decision=decision,
        eligible=eligible,
        default=None,
        policy=POLICY,
    )


def _track(**overrides) -> TrackRow:
    values = {
        "public_id": "T1",
        "url": "/tracks/T1/?a=1&b=2",
        "title": HOSTILE,
        "isrc": "<i>isrc</i>",
        "is_label": True,
        "license_text": "Label: Smith & Sons <Records>",
        "duration": "3:35",
        "changed_iso": "2026-11-29T16:24:09+00:00",
        "changed": "29 Nov 2026, 16:24",
    }
    return TrackRow(**{**values, **overrides})


def test_a_switch_escapes_the_title_in_its_name_and_its_announcement():
    html = cell_html(_cell(), public_id="T1", switch_url=switch_url(), announce=True)

    assert isinstance(html, SafeString)
    answer = (
        '<button id="s-T1-genai-training-{state}" form="switch-form" '
        'name="set" value="T1|genai-training|{state}" hx-post="/tracks/switch/" '
        'aria-pressed="{pressed}">{text}</button>'
    )
    assert html == (
        '<td id="c-T1-genai-training" class="switch-cell"><div class="answers" '
        'role="group" aria-label="Generative AI training for '
        f'“{ESCAPED}”: Yes">'
        + answer.format(state="granted", pressed="true", text="Yes")
        + answer.format(state="denied", pressed="false", text="No")
        + answer.format(state="default", pressed="false", text="My default: No")
        + "</div>"
        '<span class="eligible-mark">Eligible</span>'
        '<span class="visually-hidden" role="status">Generative AI training for '
        f"“{ESCAPED}” is now Yes, eligible. Saved.</span></td>"
    )


def test_a_locked_control_escapes_the_title_and_keeps_the_icon():
    html = cell_html(
        _cell(license_class="label", decision="", eligible=False),
        public_id="T1",
        switch_url=switch_url(),
    )

    reason = (
        "Label-licensed: the platform does not allow generative AI training "
        "of this track"
    )
    assert html == (
        '<td id="c-T1-genai-training" class="switch-cell">'
        '<span class="switch switch-locked" role="img" '
        f'aria-label="Generative AI training for “{ESCAPED}”: not allowed. '
        f'{reason}" title="{reason}">{LOCK_ICON} '
        '<span aria-hidden="true">Not allowed</span></span></td>'
    )


@pytest.mark.parametrize("public_id", ['x" onclick="alert(1)', "x<y>"])
def test_a_hostile_public_id_stays_inside_its_attributes(public_id):
    cell = consent_cell(
        public_id=public_id,
        title="Song",
        license_class="independent",
        use=GENAI,
        decision="",
        eligible=False,
        default=None,
        policy=POLICY,
    )

    html = cell_html(cell, public_id=public_id, switch_url=switch_url())

    assert public_id not in html
    assert '"alert' not in html and "<y>" not in html


def test_a_row_escapes_every_track_value():
    track = _track()
    [row] = consent_rows(
        track_rows=[track],
        license_classes={"T1": "label"},
        states={},
        defaults={},
        policy=POLICY,
    )

    html = row_html(row, switch_url=switch_url())

    assert isinstance(html, SafeString)
    for raw in (HOSTILE, track.isrc, track.license_text, track.url):
        assert raw not in html
    assert f'aria-label="Select “{ESCAPED}”"' in html
    assert f'<a href="/tracks/T1/?a=1&amp;b=2">{ESCAPED}</a>' in html
    assert '<span class="mono">&lt;i&gt;isrc&lt;/i&gt;</span>' in html
    assert (
        '<span class="badge badge-label">Label: Smith &amp; Sons &lt;Records&gt;'
        "</span>" in html
    )
    # the four locked controls and the row's reason carry the icon unescaped
    assert html.count(LOCK_ICON) == 5


def test_rows_are_one_safe_string_in_order():
    rows = consent_rows(
        track_rows=[_track(public_id="A"), _track(public_id="B", is_label=False)],
        license_classes={"A": "label", "B": "independent"},
        states={},
        defaults={},
        policy=POLICY,
    )

    html = rows_html(rows)

    assert isinstance(html, SafeString)
    assert html == row_html(rows[0], switch_url=switch_url()) + row_html(
        rows[1], switch_url=switch_url()
    )
    assert html.index('id="sel-A"') < html.index('id="sel-B"')
