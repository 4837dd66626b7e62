"""The public policy page: the current rules in words, under every rule, and
every version with why and what it changed (receipts link here)."""

import pytest

from catalog.models import LicenseClass
from consent.models import Rule
from consent.policy import policy_current
from consent.services import policy_publish
from tests.consent.helpers import GENAI, MINING
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

WORDS = {
    Rule.OPT_IN: "Only with the artist&#x27;s yes",
    Rule.OPT_OUT: "Unless the artist says no",
    Rule.PROHIBITED: "Never",
}


def _cell(page: str, use_name: str) -> list[str]:
    """The table row of a use: its cells after the heading."""
    row = page.split(f'<th scope="row">{use_name}')[1].split("</tr>")[0]
    return [cell.split("</td>")[0] for cell in row.split("<td>")[1:]]


@pytest.mark.parametrize("rule", [Rule.OPT_IN, Rule.OPT_OUT, Rule.PROHIBITED])
def test_anyone_reads_the_current_rules_in_words(client, rule):
    # given a policy where independent data mining follows ``rule``
    rules = {**policy_current().rules, (LicenseClass.INDEPENDENT, MINING): rule}
    if rules != policy_current().rules:
        policy_publish(rules=rules, actor=UserFactory(), reason="A test of the page")

    # when anyone opens /policy/
    response = client.get("/policy/")

    # then the table says it in words, per class, for every use
    assert response.status_code == 200
    page = response.content.decode()
    independent, label = _cell(page, "Data mining")
    assert independent == WORDS[rule]
    assert label == WORDS[policy_current().rule(LicenseClass.LABEL, MINING)]
    assert "Generative AI training" in page and "Other AI training" in page


def test_every_version_is_listed_with_why_and_what_changed(client):
    rules = {**policy_current().rules, (LicenseClass.INDEPENDENT, GENAI): Rule.OPT_OUT}
    version = policy_publish(
        rules=rules, actor=UserFactory(), reason="Partners asked for opt-out"
    )

    page = client.get("/policy/").content.decode()

    assert f"Version {version.number}" in page and "Version 1" in page
    assert "Why: Partners asked for opt-out" in page
    assert (
        "Generative AI training, independent music: only with the artist&#x27;s yes "
        "before, unless the artist says no from then on." in page
    )
    assert "The first version." in page


def test_the_receipts_policy_link_resolves(client):
    assert client.get("/policy/").status_code == 200
