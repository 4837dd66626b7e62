"""Consent controls as the track list and the track page show them.

Formatted once in Python (the list renders 50 rows × 4 uses), with the words
an artist reads: what they said, whether the default applies, whether the
track is eligible and why a control is locked.
"""

from dataclasses import dataclass

from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from catalog.rows import TrackRow
from config.reverse_once import reverse_once
from consent.models import Decision, Rule
from consent.policy import (
    Policy,
    all_uses_locked_reason,
    answer_is_yes,
    is_locked,
    locked_reason,
)
from consent.propagation_html import STATUS_SLOT
from consent.uses import USE_ORDER, USES


@dataclass(frozen=True, slots=True)
class ConsentCell:
    cell_id: str
    use: str
    use_name: str
    state: str  # granted / denied / default
    says_yes: bool  # the artist's effective answer
    eligible: bool
    locked: bool
    reason: str
    next_state: str
    label: str  # the use and the track title
    text: str  # the answer in words, as every control says it
    default_yes: bool = False  # what "My default" means for this use now

    @property
    def default_text(self) -> str:
        return f"My default: {'Yes' if self.default_yes else 'No'}"


def consent_cell(
    *,
    public_id: str,
    title: str,
    license_class: str,
    use: str,
    decision: str,
    eligible: bool,
    default: str | None,
    policy: Policy,
) -> ConsentCell:
    rule = policy.rule(license_class, use)
    info = USES[use]
    says_yes = answer_is_yes(rule, decision, default)
    locked = is_locked(rule)
    state = decision or "default"
    default_yes = answer_is_yes(rule, "", default)
    if locked:
        text = "Not allowed"
    elif decision:
        text = "Yes" if says_yes else "No"
    else:
        text = f"My default: {'Yes' if says_yes else 'No'}"
    return ConsentCell(
        cell_id=f"c-{public_id}-{use}",
        use=use,
        use_name=info.name,
        state=state,
        says_yes=says_yes,
        eligible=eligible,
        locked=locked,
        reason=locked_reason(license_class, use) if locked else "",
        next_state=Decision.DENIED if says_yes else Decision.GRANTED,
        label=f"{info.name} for “{title}”",
        text=text,
        default_yes=default_yes,
    )


@dataclass(frozen=True, slots=True)
class ConsentRow:
    track: TrackRow
    cells: list[ConsentCell]
    locked_reason: str


def consent_rows(
    *,
    track_rows: list[TrackRow],
    license_classes: dict[str, str],
    states: dict[str, dict[str, tuple]],
    defaults: dict[str, str | None],
    policy: Policy,
) -> list[ConsentRow]:
    rows = []
    for row in track_rows:
        license_class = license_classes[row.public_id]
        per_use = states.get(row.public_id, {})
        cells = [
            consent_cell(
                public_id=row.public_id,
                title=row.title,
                license_class=license_class,
                use=use,
                decision=per_use.get(use, ("", False))[0],
                eligible=per_use.get(use, ("", False))[1],
                default=defaults.get(use),
                policy=policy,
            )
            for use in USE_ORDER
        ]
        locked = [cell.reason for cell in cells if cell.locked]
        rows.append(
            ConsentRow(
                track=row,
                cells=cells,
                locked_reason=(
                    all_uses_locked_reason(license_class)
                    if len(locked) == len(cells)
                    else ""
                ),
            )
        )
    return rows


@dataclass(frozen=True)
class UseExplanation:
    cell: ConsentCell
    rule_words: str
    why: str
    description: str


def explain(
    *, cell: ConsentCell, rule: str, decision: str, default: str | None
) -> UseExplanation:
    """Why a use is or is not eligible, in one sentence."""
    answer_words = (
        f"you said {'yes' if decision == Decision.GRANTED else 'no'} for this track"
        if decision
        else (
            "your default for this use is "
            + ("yes" if default == Decision.GRANTED else "no")
            if default
            else "you have not said yes (no default set)"
        )
    )
    if is_locked(rule):
        why = f"Not eligible: {cell.reason}."
        rule_words = "Not allowed by the platform"
    elif rule == Rule.OPT_IN:
        rule_words = "Only with your yes (opt-in)"
        why = (
            f"Eligible: {answer_words}, and the policy allows it with your yes."
            if cell.eligible
            else f"Not eligible: the policy needs your yes, and {answer_words}."
        )
    else:
        rule_words = "Unless you say no (opt-out)"
        why = (
            f"Eligible: the policy allows it unless you say no, and {answer_words}."
            if cell.eligible
            else f"Not eligible: {answer_words}."
        )
    return UseExplanation(
        cell=cell,
        rule_words=rule_words,
        why=why,
        description=USES[cell.use].description,
    )


# --- HTML ------------------------------------------------------------------------
# The list renders 50 rows with four controls each. Built with Django's template
# language that cost ~30 ms a page (most of the request); built here with
# ``format_html``, one call per fragment, about 4 ms (a page is built once per
# version of the list and cached; one control costs ~20 µs). ``format_html``
# escapes every value it is given unless the value is already a ``SafeString``
# (a fragment built the same way, or a constant below), so escaping is the
# default and trusting markup is explicit. Every switch is a submit button of
# one form outside the table (``form="switch-form"``): without JavaScript the
# click posts that form with the button's ``set`` value; with HTMX the button
# posts itself and its cell is swapped. The rows hold no per-request value (no
# CSRF token, no return URL), so they can be cached. The HTMX partial uses the
# same function: one definition of the markup.

SWITCH_FORM_ID = "switch-form"
LOCK_ICON = mark_safe(  # noqa: S308 - a constant
    '<svg class="lock-icon" aria-hidden="true" focusable="false" width="12" '
    'height="14" viewBox="0 0 12 14"><rect x="1" y="6" width="10" height="8" '
    'rx="1.5" fill="currentColor"/><path d="M3.2 6V4.2a2.8 2.8 0 0 1 5.6 0V6" '
    'fill="none" stroke="currentColor" stroke-width="1.6"/></svg>'
)
_ELIGIBLE_MARK = mark_safe(  # noqa: S308 - a constant
    '<span class="eligible-mark">Eligible</span>'
)
_LOCKED_CELL = (
    '<td id="{cell_id}" class="switch-cell"><span class="switch switch-locked" '
    'role="img" aria-label="{label}: not allowed. {reason}" title="{reason}">'
    '{icon} <span aria-hidden="true">{text}</span></span>{status}</td>'
)
# Three answers, the track page's words: Yes, No, My default (and what it
# means now). The group's name says the use, the track and the answer in
# force; each button says whether it is that answer (aria-pressed). An
# explicit answer and a default one look different (solid and outlined).
# Each button has an id, so HTMX keeps the focus on it across the swap. The
# swap's target (the cell) and style are inherited from the table's body
# (``hx-target="closest td"``), and a button's type is "submit" by default:
# the list's busiest markup says nothing twice.
_SWITCH_CELL = (
    '<td id="{cell_id}" class="switch-cell"><div class="answers" role="group" '
    'aria-label="{label}: {text}">{buttons}</div>{eligible}{status}</td>'
)
_ANSWER = (
    '<button id="s-{public_id}-{use}-{state}" form="' + SWITCH_FORM_ID + '" '
    'name="set" value="{value}" hx-post="{switch_url}" aria-pressed="{pressed}">'
    "{text}</button>"
)
_STATUS = (
    '<span class="visually-hidden" role="status">{label} is now '
    "{text}{eligible}. Saved.</span>"
)
_ROW = (
    '<tr id="r-{public_id}"><td class="select-col"><input type="checkbox" '
    'name="tracks" value="{public_id}" form="bulk-form" id="sel-{public_id}" '
    'aria-label="Select “{title}”"></td>'
    '<th scope="row" class="track-cell"><a href="{url}">{title}</a>'
    '<span class="track-meta"><span class="mono">{isrc}</span> · '
    '<span class="{badge}">{license_text}</span> · {duration}</span>{locked}</th>'
    "{cells}"
    '<td><time datetime="{changed_iso}">{changed}</time>{status}</td></tr>'
)
_LOCKED_REASON = '<span class="locked-reason">{icon} {reason}</span>'


def switch_value(public_id: str, use: str, state: str) -> str:
    """What a switch posts as ``set``: the track, the use and the new state."""
    return f"{public_id}|{use}|{state}"


def cell_html(
    cell: ConsentCell,
    *,
    public_id: str,
    switch_url: str,
    announce: bool = False,
    out_of_band: SafeString | str = "",
) -> SafeString:
    """One control's ``<td>`` (the HTMX swap target); ``out_of_band``: markup
    HTMX swaps elsewhere (``hx-swap-oob``), inside the cell so that the answer
    stays one table cell."""
    status = format_html(
        "{}{}",
        format_html(
            _STATUS,
            label=cell.label,
            text=cell.text,
            eligible=", eligible" if cell.eligible else "",
        )
        if announce
        else "",
        out_of_band,
    )
    if cell.locked:
        return format_html(
            _LOCKED_CELL,
            cell_id=cell.cell_id,
            label=cell.label,
            reason=cell.reason,
            icon=LOCK_ICON,
            text=cell.text,
            status=status,
        )
    buttons = _answer_buttons(
        escape(public_id), cell.use, cell.state, cell.default_text, switch_url
    )
    return format_html(
        _SWITCH_CELL,
        cell_id=cell.cell_id,
        label=cell.label,
        text=cell.text,
        buttons=buttons,
        eligible=_ELIGIBLE_MARK if cell.eligible else "",
        status=status,
    )


_ANSWER_TEXTS = (
    (Decision.GRANTED.value, "Yes"),
    (Decision.DENIED.value, "No"),
    ("default", None),
)


def _answer_buttons(
    public_id: str, use: str, pressed: str, default_text: str, switch_url: str
) -> SafeString:
    """The three buttons, formatted with ``str.format``: the busiest markup
    of the switch's answer. Every value is escaped or one of ours: the public
    id is escaped by the caller, the use is a slug of ``Use``, the switch URL
    is escaped (``switch_url``) and the words are constants."""
    return mark_safe(  # noqa: S308 - every value escaped or a constant (above)
        "".join(
            _ANSWER.format(
                public_id=public_id,
                use=use,
                state=state,
                value=switch_value(public_id, use, state),
                switch_url=switch_url,
                pressed="true" if state == pressed else "false",
                text=text or default_text,
            )
            for state, text in _ANSWER_TEXTS
        )
    )


def row_html(
    row: ConsentRow, *, switch_url: str, status: SafeString = STATUS_SLOT
) -> SafeString:
    """One row; ``status`` marks where its propagation status goes (filled
    per request, outside the page's cache, by ``rows_with_status``)."""
    track = row.track
    return format_html(
        _ROW,
        public_id=track.public_id,
        title=track.title,
        url=track.url,
        isrc=track.isrc,
        badge="badge badge-label" if track.is_label else "badge",
        license_text=track.license_text,
        duration=track.duration,
        locked=(
            format_html(_LOCKED_REASON, icon=LOCK_ICON, reason=row.locked_reason)
            if row.locked_reason
            else ""
        ),
        cells=format_html_join(
            "",
            "{}",
            (
                (cell_html(cell, public_id=track.public_id, switch_url=switch_url),)
                for cell in row.cells
            ),
        ),
        changed_iso=track.changed_iso,
        changed=track.changed,
        status=status,
    )


def switch_url() -> SafeString:
    """Where every switch posts, escaped for an attribute (every switch's
    answer carries it)."""
    return escape(reverse_once("tracks:switch"))


def rows_html(rows: list[ConsentRow]) -> SafeString:
    url = switch_url()
    return format_html_join(
        "", "{}", ((row_html(row, switch_url=url),) for row in rows)
    )
