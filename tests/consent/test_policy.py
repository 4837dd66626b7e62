import pytest

from consent.models import PolicyRule, PolicyVersion
from consent.policy import (
    SHIPPED_RULES,
    all_uses_locked_reason,
    is_eligible,
    locked_reason,
    policy_current,
)
from consent.uses import USE_ORDER

USES = ["genai-training", "ai-training", "ai-inference", "data-mining"]

# rule, the track's decision ("" = none), the artist's explicit default (None =
# never set) -> eligible. Written out by hand, not recomputed.
TRUTH_TABLE = [
    # opt_in: only an answer of "granted" makes it eligible
    ("opt_in", "", None, False),
    ("opt_in", "", "granted", True),
    ("opt_in", "", "denied", False),
    ("opt_in", "granted", None, True),
    ("opt_in", "granted", "granted", True),
    ("opt_in", "granted", "denied", True),
    ("opt_in", "denied", None, False),
    ("opt_in", "denied", "granted", False),
    ("opt_in", "denied", "denied", False),
    # opt_out: eligible unless the answer is "denied" (silence is a yes)
    ("opt_out", "", None, True),
    ("opt_out", "", "granted", True),
    ("opt_out", "", "denied", False),
    ("opt_out", "granted", None, True),
    ("opt_out", "granted", "granted", True),
    ("opt_out", "granted", "denied", True),
    ("opt_out", "denied", None, False),
    ("opt_out", "denied", "granted", False),
    ("opt_out", "denied", "denied", False),
    # prohibited: never
    ("prohibited", "", None, False),
    ("prohibited", "", "granted", False),
    ("prohibited", "", "denied", False),
    ("prohibited", "granted", None, False),
    ("prohibited", "granted", "granted", False),
    ("prohibited", "granted", "denied", False),
    ("prohibited", "denied", None, False),
    ("prohibited", "denied", "granted", False),
    ("prohibited", "denied", "denied", False),
]


def test_the_truth_table_covers_every_combination():
    combinations = {
        (rule, decision, default) for rule, decision, default, _ in TRUTH_TABLE
    }

    assert len(TRUTH_TABLE) == 27
    assert len(combinations) == 27


@pytest.mark.parametrize("rule, decision, default, expected", TRUTH_TABLE)
def test_is_eligible(rule, decision, default, expected):
    assert is_eligible(rule, decision, default) is expected


def test_the_uses_are_the_four_fixed_slugs_in_order():
    assert USE_ORDER == USES


@pytest.mark.django_db
def test_the_migration_ships_policy_v1():
    # given a freshly migrated database, when the current policy is read
    policy = policy_current()

    # then it is v1: independent opt-in and label prohibited, for all four uses
    assert policy.number == 1
    assert policy.rules == {
        ("independent", "genai-training"): "opt_in",
        ("independent", "ai-training"): "opt_in",
        ("independent", "ai-inference"): "opt_in",
        ("independent", "data-mining"): "opt_in",
        ("label", "genai-training"): "prohibited",
        ("label", "ai-training"): "prohibited",
        ("label", "ai-inference"): "prohibited",
        ("label", "data-mining"): "prohibited",
    }
    assert policy.rules == SHIPPED_RULES
    version = PolicyVersion.objects.get()
    assert version.number == 1
    assert version.created_by is None
    assert version.reason.startswith("Shipped policy")
    assert PolicyRule.objects.count() == 8


@pytest.mark.django_db
def test_policy_current_is_the_latest_version():
    # given a second version with one different rule
    version = PolicyVersion.objects.create(number=2, reason="test")
    PolicyRule.objects.bulk_create(
        PolicyRule(
            version=version,
            license_class=license_class,
            use=use,
            rule="opt_out"
            if (license_class, use) == ("independent", USES[0])
            else rule,
        )
        for (license_class, use), rule in SHIPPED_RULES.items()
    )

    # when the current policy is read, then it is v2's
    policy = policy_current()
    assert policy.number == 2
    assert policy.rule("independent", "genai-training") == "opt_out"
    assert policy.rule("independent", "ai-training") == "opt_in"
    assert policy.rule("label", "genai-training") == "prohibited"


def test_locked_reasons_in_words():
    assert locked_reason("label", "genai-training") == (
        "Label-licensed: the platform does not allow generative AI training of "
        "this track"
    )
    assert all_uses_locked_reason("label") == (
        "Label-licensed: the platform does not allow AI training of this track"
    )
    assert locked_reason("independent", "data-mining") == (
        "The platform does not allow data mining of independent tracks"
    )
