"""The policy: one rule per (licence class, use), versioned; and what it implies.

Eligibility of a track for a use is ``rule × answer``, where the answer is the
artist's decision for the track or, when there is none, the artist's explicit
default for the use (``None`` when neither was ever set):

* ``prohibited``: never eligible, whatever the answer (the control is locked);
* ``opt_in``: eligible only when the answer is ``granted`` (silence is a no);
* ``opt_out``: eligible unless the answer is ``denied`` (silence is a yes).
"""

import re
from dataclasses import dataclass

from django.db.models import Subquery

from catalog.models import LicenseClass
from consent.models import Decision, PolicyRule, PolicyVersion, Rule
from consent.uses import USE_ORDER, USES

SHIPPED_RULES: dict[tuple[str, str], str] = {
    **{(LicenseClass.INDEPENDENT, use): Rule.OPT_IN for use in USE_ORDER},
    **{(LicenseClass.LABEL, use): Rule.PROHIBITED for use in USE_ORDER},
}


def is_locked(rule: str) -> bool:
    """Whether the artist's control for a use under ``rule`` is locked: the
    platform does not let any answer make the track eligible."""
    return rule == Rule.PROHIBITED


def is_eligible(rule: str, decision: str, default: str | None) -> bool:
    """The one definition of eligibility (see the module docstring)."""
    if is_locked(rule):
        return False
    answer = decision or default
    if rule == Rule.OPT_IN:
        return answer == Decision.GRANTED
    return answer != Decision.DENIED


# Why a track is or is not eligible, as the partner API reports it: one
# stable code per branch of ``is_eligible``.
REASONS: dict[str, str] = {
    "prohibited": "The platform's policy does not allow this use of this track.",
    "granted": "The artist said yes to this use of this track.",
    "denied": "The artist said no to this use of this track.",
    "default_granted": "The artist's default for this use is yes.",
    "default_denied": "The artist's default for this use is no.",
    "no_answer_opt_in": "Nobody has said yes, and the policy needs a yes.",
    "no_answer_opt_out": "Nobody has said no, and the policy allows it unless "
    "the artist says no.",
}


def eligibility_reason(rule: str, decision: str, default: str | None) -> str:
    """The code (a key of ``REASONS``) of the branch of ``is_eligible`` that
    decides ``rule`` × answer."""
    if is_locked(rule):
        return "prohibited"
    if decision:
        return decision
    if default:
        return f"default_{default}"
    return "no_answer_opt_in" if rule == Rule.OPT_IN else "no_answer_opt_out"


# The values each input of ``is_eligible`` takes: a rule, a decision ("" when
# the artist has not decided) and an explicit default (None when never set).
RULE_VALUES: tuple[str, ...] = tuple(Rule.values)
DECISION_VALUES: tuple[str, ...] = ("", *Decision.values)
DEFAULT_VALUES: tuple[str | None, ...] = (None, *Decision.values)


def answer_is_yes(rule: str, decision: str, default: str | None) -> bool:
    """The artist's effective answer, as their control shows it: whether the
    answer lets the use happen under the rule. A prohibited use is read as
    opt-in would read it, so a locked control still shows what was said."""
    return is_eligible(Rule.OPT_IN if is_locked(rule) else rule, decision, default)


def eligible_sql(rule_sql: str, decision_sql: str, default_sql: str) -> str:
    """``is_eligible`` as a SQL boolean expression over three SQL expressions
    (a rule, a decision with "" for none, a default with NULL for none).

    Built by asking ``is_eligible`` about every combination of
    ``RULE_VALUES`` × ``DECISION_VALUES`` × ``DEFAULT_VALUES``, as nested
    ``CASE``s; where every answer of a branch is the same, the branch is that
    answer (a prohibited rule is ``FALSE`` without reading the answer). An
    input outside these values, where the answer depends on it, gives NULL:
    the rules have no answer for it. Runs on PostgreSQL and SQLite alike.
    """

    def branch(sql: str, values: tuple, answer_of) -> str:
        answers = [answer_of(value) for value in values]
        if all(answer == answers[0] for answer in answers):
            return answers[0]
        whens = " ".join(
            f"WHEN {sql} {_sql_test(value)} THEN {answer}"
            for value, answer in zip(values, answers, strict=True)
        )
        return f"CASE {whens} END"

    return branch(
        rule_sql,
        RULE_VALUES,
        lambda rule: branch(
            decision_sql,
            DECISION_VALUES,
            lambda decision: branch(
                default_sql,
                DEFAULT_VALUES,
                lambda default: (
                    "TRUE" if is_eligible(rule, decision, default) else "FALSE"
                ),
            ),
        ),
    )


def _sql_test(value: str | None) -> str:
    if value is None:
        return "IS NULL"
    if not re.fullmatch(r"[a-z_-]*", value):  # the choices' slugs: no quoting
        raise ValueError(f"not a plain value: {value!r}")
    return f"= '{value}'"


@dataclass(frozen=True)
class Policy:
    number: int
    rules: dict[tuple[str, str], str]

    def rule(self, license_class: str, use: str) -> str:
        return self.rules[(license_class, use)]


def latest_version_id_subquery() -> Subquery:
    return Subquery(PolicyVersion.objects.order_by("-number").values("id")[:1])


def policy_current() -> Policy:
    """The latest policy version and its rules, in one query."""
    rows = list(
        PolicyRule.objects.filter(version_id=latest_version_id_subquery()).values_list(
            "version__number", "license_class", "use", "rule"
        )
    )
    if not rows:
        raise RuntimeError("no policy version: run migrations")
    return Policy(
        number=rows[0][0],
        rules={(license_class, use): rule for _, license_class, use, rule in rows},
    )


RULE_WORDS = {
    Rule.OPT_IN: "only with your yes",
    Rule.OPT_OUT: "unless you say no",
    Rule.PROHIBITED: "never",
}


def locked_reason(license_class: str, use: str) -> str:
    """Why a prohibited use is locked, in words an artist understands."""
    name = USES[use].name[:1].lower() + USES[use].name[1:]  # keeps "AI"
    if license_class == LicenseClass.LABEL:
        return f"Label-licensed: the platform does not allow {name} of this track"
    return f"The platform does not allow {name} of independent tracks"


def locked_next_step(license_class: str) -> str:
    """What an artist can do about a locked use, in words."""
    if license_class == LicenseClass.LABEL:
        return (
            "Your label's licence covers AI use of this track, so the answer is "
            "your label's: ask them if you want it to change."
        )
    return (
        "This rule is the same for every independent track on the platform; "
        "the published policy says why and lists every change to it."
    )


def all_uses_locked_reason(license_class: str) -> str:
    """The reason shown once on a track whose every use is prohibited."""
    if license_class == LicenseClass.LABEL:
        return "Label-licensed: the platform does not allow AI training of this track"
    return "The platform does not allow AI use of independent tracks"


# The rules as the public policy page says them (for anyone, not the artist).
PUBLIC_RULE_WORDS = {
    Rule.OPT_IN: "only with the artist's yes",
    Rule.OPT_OUT: "unless the artist says no",
    Rule.PROHIBITED: "never",
}


@dataclass(frozen=True)
class PolicyChange:
    license_class: str
    use: str
    old: str
    new: str


def policy_changes(
    old: dict[tuple[str, str], str], new: dict[tuple[str, str], str]
) -> list[PolicyChange]:
    """What a version changed from the one before it, in use order."""
    return [
        PolicyChange(license_class, use, old[(license_class, use)], rule)
        for (license_class, use), rule in sorted(
            new.items(), key=lambda item: (item[0][0], USE_ORDER.index(item[0][1]))
        )
        if (license_class, use) in old and old[(license_class, use)] != rule
    ]


# Every page's footer says ``policy_promise`` (and the home page how the
# classes are treated): cached together, and dropped when a version is
# published (``policy_publish``); the timeout bounds a process's own memory
# cache, which another process's publish cannot reach.
POLICY_WORDS_CACHE_KEY = "policy-words:v2"
POLICY_WORDS_CACHE_SECONDS = 60


def policy_promise(policy: Policy) -> str:
    """What the policy promises an artist about silence, in one sentence
    true under any rules: the uses (and classes) that need a no to stay out,
    and that nothing else is used without a yes (opt-in needs one; a
    prohibited use is never made, yes or no)."""
    classes = list(LicenseClass.choices)
    opt_out = []
    for use in USE_ORDER:
        named = [
            str(label).lower()
            for value, label in classes
            if policy.rule(value, use) == Rule.OPT_OUT
        ]
        if not named:
            continue
        name = USES[use].name[:1].lower() + USES[use].name[1:]  # keeps "AI"
        scope = "" if len(named) == len(classes) else f" of {' and '.join(named)} music"
        opt_out.append(f"{name}{scope}")
    if not opt_out:
        return "Nothing you upload is used for AI unless you say yes."
    listed = (
        opt_out[0]
        if len(opt_out) == 1
        else f"{', '.join(opt_out[:-1])} and {opt_out[-1]}"
    )
    allowed = "is" if len(opt_out) == 1 else "are"
    everything = len(opt_out) == len(USE_ORDER) and all(
        "music" not in item for item in opt_out
    )
    if everything:
        return "Every use of your music for AI is allowed unless you say no."
    return (
        f"{listed[:1].upper()}{listed[1:]} {allowed} allowed unless you say no; "
        "nothing else is used for AI unless you say yes."
    )


def unset_default_words(
    policy: Policy, use: str, classes: list[str] | None = None
) -> str:
    """What "Not set" means for a use, as the defaults form offers it: per
    licence class (of ``classes``, the artist's; every class if not given),
    No (opt-in), Yes until you say no (opt-out) or not allowed (prohibited);
    the same rule as every "My default". Classes are named wherever they
    differ."""
    answers: dict[str, list[str]] = {}
    for value, label in LicenseClass.choices:
        if classes is not None and value not in classes:
            continue
        rule = policy.rule(value, use)
        if is_locked(rule):
            word = "not allowed"
        elif answer_is_yes(rule, "", None):
            word = "Yes until you say no"
        else:
            word = "No"
        answers.setdefault(word, []).append(str(label).lower())
    if len(answers) == 1:
        (word,) = answers
        return {
            "No": "Not set (No until you choose)",
            "not allowed": "Not set (the policy does not allow this use)",
        }.get(word, f"Not set ({word})")
    parts = [
        f"{word} for {' and '.join(names)} music" for word, names in answers.items()
    ]
    return f"Not set ({'; '.join(parts)})"
