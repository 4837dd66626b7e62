"""Consent controls as the track list and the track page show them.

Formatted once in Python (the list renders 50 rows × 4 uses), with the words
an artist reads: what they said, whether the default applies, whether the
track is eligible and why a control is locked.
"""

from dataclasses import dataclass

from django.urls import reverse

from catalog.rows import TrackRow
from consent.models import Decision, Rule
from consent.policy import Policy, all_uses_locked_reason, locked_reason
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
    label: str  # accessible name: use and track title
    text: str
    css: str


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
    answer = decision or default
    if rule == Rule.OPT_OUT:
        says_yes = answer != Decision.DENIED
    else:
        says_yes = answer == Decision.GRANTED
    locked = rule == Rule.PROHIBITED
    state = decision or "default"
    if locked:
        text, css = "Not allowed", "locked"
    elif decision:
        text, css = ("Yes" if says_yes else "No"), ("yes" if says_yes else "no")
    else:
        text = f"{'Yes' if says_yes else 'No'} (default)"
        css = "default-yes" if says_yes else "default-no"
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
        css=css,
    )


@dataclass(frozen=True, slots=True)
class ConsentRow:
    track: TrackRow
    consent_url: str
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
    prefix = reverse("tracks:consent", kwargs={"public_id": "_"})
    head, tail = prefix.split("_", 1)
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
                consent_url=f"{head}{row.public_id}{tail}",
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
    rule: str
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
    if rule == Rule.PROHIBITED:
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
        rule=rule,
        rule_words=rule_words,
        why=why,
        description=USES[cell.use].description,
    )
