"""The policy: one rule per (licence class, use), versioned; and what it implies.

Eligibility of a track for a use is ``rule × answer``, where the answer is the
artist's decision for the track or, when there is none, the artist's explicit
default for the use (``None`` when neither was ever set):

* ``prohibited``: never eligible, whatever the answer (the control is locked);
* ``opt_in``: eligible only when the answer is ``granted`` (silence is a no);
* ``opt_out``: eligible unless the answer is ``denied`` (silence is a yes).
"""

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from catalog.models import LicenseClass
from consent.models import Decision, PolicyRule, PolicyVersion, Rule
from consent.uses import USE_ORDER, USES

SHIPPED_RULES: dict[tuple[str, str], str] = {
    **{(LicenseClass.INDEPENDENT, use): Rule.OPT_IN for use in USE_ORDER},
    **{(LicenseClass.LABEL, use): Rule.PROHIBITED for use in USE_ORDER},
}


def is_eligible(rule: str, decision: str, default: str | None) -> bool:
    """The one definition of eligibility (see the module docstring)."""
    if rule == Rule.PROHIBITED:
        return False
    answer = decision or default
    if rule == Rule.OPT_IN:
        return answer == Decision.GRANTED
    return answer != Decision.DENIED


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


def current_rule_subquery(*, license_class_ref: str, use_ref) -> Subquery:
    """The current rule for a track's class and a use, as a subquery."""
    return Subquery(
        PolicyRule.objects.filter(
            version_id=latest_version_id_subquery(),
            license_class=OuterRef(license_class_ref),
            use=use_ref,
        ).values("rule")[:1]
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


def all_uses_locked_reason(license_class: str) -> str:
    """The reason shown once on a track whose every use is prohibited."""
    if license_class == LicenseClass.LABEL:
        return "Label-licensed: the platform does not allow AI training of this track"
    return "The platform does not allow AI use of independent tracks"
