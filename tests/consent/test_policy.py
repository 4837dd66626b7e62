import itertools

import pytest
from django.db import connection

from consent.models import PolicyRule, PolicyVersion
from consent.policy import (
    DECISION_VALUES,
    DEFAULT_VALUES,
    RULE_VALUES,
    SHIPPED_RULES,
    all_uses_locked_reason,
    answer_is_yes,
    eligible_sql,
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


# --- the rule in SQL and on the controls, derived from is_eligible ------------------


def test_the_sql_enumerates_every_value_of_the_truth_table():
    assert set(RULE_VALUES) == {rule for rule, _, _, _ in TRUTH_TABLE}
    assert set(DECISION_VALUES) == {decision for _, decision, _, _ in TRUTH_TABLE}
    assert set(DEFAULT_VALUES) == {default for _, _, default, _ in TRUTH_TABLE}


def _evaluate_in_the_database(inputs: list[tuple]) -> list:
    """``eligible_sql`` run by the test database on each (rule, decision,
    default), in the order given."""
    values = ", ".join(["(%s, %s, %s, %s)"] * len(inputs))
    params = [
        value for position, row in enumerate(inputs) for value in (position, *row)
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH r(position, rule, decision, dflt) AS (VALUES {values}) "
            f"SELECT {eligible_sql('r.rule', 'r.decision', 'r.dflt')} "
            "FROM r ORDER BY r.position",
            params,
        )
        return [value for (value,) in cursor.fetchall()]


@pytest.mark.django_db
def test_eligible_sql_agrees_with_is_eligible_on_every_combination():
    # given every (rule, decision, default) the rule is defined on
    inputs = list(itertools.product(RULE_VALUES, DECISION_VALUES, DEFAULT_VALUES))
    assert len(inputs) == 27

    # when the database evaluates the generated expression on each
    answers = _evaluate_in_the_database(inputs)

    # then each answer is a boolean (never NULL) equal to is_eligible's
    assert [None if value is None else bool(value) for value in answers] == [
        is_eligible(*row) for row in inputs
    ]
    # and to the hand-written truth table
    assert {row: bool(value) for row, value in zip(inputs, answers, strict=True)} == {
        (rule, decision, default): ok for rule, decision, default, ok in TRUTH_TABLE
    }


@pytest.mark.django_db
def test_eligible_sql_has_no_answer_where_the_rule_has_none():
    answers = _evaluate_in_the_database(
        [
            ("opt_in", "maybe", None),  # an unknown decision
            ("opt_out", "", "maybe"),  # an unknown default
            (None, "granted", None),  # no rule for this class and use
            ("sometimes", "granted", None),  # an unknown rule
            ("prohibited", "maybe", "maybe"),  # prohibited reads no answer
            ("opt_in", "granted", "maybe"),  # a decision makes the default moot
        ]
    )

    assert [None if value is None else bool(value) for value in answers] == [
        None,
        None,
        None,
        None,
        False,
        True,
    ]


def test_eligible_sql_takes_only_plain_values():
    sql = eligible_sql("rule", "decision", "dflt")

    assert sql.startswith("CASE WHEN rule = 'opt_in' THEN CASE WHEN decision = ''")
    assert sql.endswith("WHEN rule = 'prohibited' THEN FALSE END")
    assert "%" not in sql


@pytest.mark.parametrize("rule, decision, default, eligible", TRUTH_TABLE)
def test_answer_is_yes_is_eligibility_with_prohibited_read_as_opt_in(
    rule, decision, default, eligible
):
    if rule == "prohibited":
        expected = is_eligible("opt_in", decision, default)
    else:
        expected = eligible

    assert answer_is_yes(rule, decision, default) is expected


def test_a_locked_control_still_shows_what_the_artist_said():
    assert answer_is_yes("prohibited", "granted", None) is True
    assert answer_is_yes("prohibited", "", "granted") is True
    assert answer_is_yes("prohibited", "", None) is False
    assert answer_is_yes("prohibited", "denied", "granted") is False
    # and silence under opt-out is a yes
    assert answer_is_yes("opt_out", "", None) is True
