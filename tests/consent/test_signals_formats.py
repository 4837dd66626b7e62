"""The public signals' formats (``consent.signals.formats`` and the site-wide
documents of ``consent.signals.documents``), each read back the way its
specification says a reader reads it: AIPREF and Content Signals with a
Structured Field Values parser, the CAWG assertion's keys and values, the RSL
document as XML in its namespace, TDMRep's rules as JSON.

The property tests draw rules, decisions and defaults, take eligibility from
``consent.policy.is_eligible`` and check that every format's answer for every
use equals it, or is more restrictive where the format merges uses. No
database: the end-to-end checks are in ``test_signals_public.py``."""

import json
import re
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.models import Decision, Rule
from consent.policy import is_eligible
from consent.signals import documents, formats
from consent.signals.documents import SITE_DEFAULT, site_documents, track_signals
from consent.uses import USE_ORDER
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING
from tests.consent.signals_helpers import (
    SITE,
    check_formats_follow,
    parse_robots,
    read_aipref,
    read_content_signal,
    read_rsl,
)

README = Path(__file__).resolve().parents[2] / "README.md"

NOTHING = dict.fromkeys(USE_ORDER, False)
EVERYTHING = dict.fromkeys(USE_ORDER, True)

answers = st.fixed_dictionaries({use: st.booleans() for use in USE_ORDER})


# --- The mapping ------------------------------------------------------------------


def test_the_mapping_is_the_table_of_the_specifications():
    # given the table of SIGNALS.md
    expected = {
        GENAI: ("cawg.ai_generative_training", "train-ai", "ai-train", "ai-train", 1),
        TRAINING: ("cawg.ai_training", None, "ai-train", "ai-train", 1),
        INFERENCE: ("cawg.ai_inference", None, "ai-input", "ai-input", 0),
        MINING: ("cawg.data_mining", None, None, None, 1),
    }

    # when the mapping is read
    mapping = {
        use: (k.cawg, k.aipref, k.content_signal, k.rsl, int(k.tdm_reservation))
        for use, k in formats.MAPPING.items()
    }

    # then it is that table, one row per use
    assert mapping == expected


def test_readme_publishes_the_table_generated_from_the_mapping():
    # given the README's section between its markers
    text = README.read_text()
    published = re.search(
        r"<!-- signals-table: [^>]*-->\n(.*?)\n<!-- /signals-table -->", text, re.S
    )

    # then it is the table the mapping gives, with every unexpressed use said
    assert published is not None
    assert published.group(1) == formats.mapping_table_markdown()
    assert published.group(1).count("— (cannot express)") == 5


def test_a_missing_use_is_an_error_never_an_answer():
    # given an answer without data mining
    partial = {GENAI: True, TRAINING: True, INFERENCE: True}

    # then no format guesses it
    for encode in (formats.content_usage, formats.tdm_reserved, formats.cawg_assertion):
        with pytest.raises(ValueError, match="data-mining"):
            encode(partial)


# --- Each format against its specification ----------------------------------------


def test_aipref_is_a_dictionary_of_y_and_n_tokens():
    # given a track that allows generative training only
    permitted = {**NOTHING, GENAI: True}

    # when it is encoded
    value = formats.content_usage(permitted)

    # then it parses as a Structured Fields dictionary of tokens
    assert value == "train-ai=y, search=y"
    assert read_aipref(value) == {"train-ai": True, "search": True}


def test_the_aipref_reader_ignores_what_is_not_a_token_y_or_n():
    # a quoted "n" and an upper-case key are no refusal (SIGNALS.md)
    assert read_aipref('train-ai="n"') == {"train-ai": None}
    with pytest.raises(ValueError):
        read_aipref("Train-AI=n")


def test_content_signal_is_a_dictionary_of_yes_and_no():
    value = formats.content_signal({**NOTHING, INFERENCE: True})

    assert value == "search=yes, ai-train=no, ai-input=yes"
    assert read_content_signal(value) == {
        "search": True,
        "ai-train": False,
        "ai-input": True,
    }


def test_the_cawg_assertion_has_its_four_entries():
    assertion = formats.cawg_assertion({**NOTHING, MINING: True})

    assert assertion == {
        "label": "cawg.training-mining",
        "data": {
            "entries": {
                "cawg.ai_generative_training": {"use": "notAllowed"},
                "cawg.ai_training": {"use": "notAllowed"},
                "cawg.ai_inference": {"use": "notAllowed"},
                "cawg.data_mining": {"use": "allowed"},
            }
        },
    }


def test_the_rsl_document_is_xml_in_the_rsl_namespace():
    # when a track that allows both trainings but not input is published
    document = formats.rsl_document(
        [("/t/abc/", {**NOTHING, GENAI: True, TRAINING: True})]
    )

    # then it is an <rsl> in its namespace with the refused usage prohibited
    assert document.startswith(b"<?xml version='1.0' encoding='utf-8'?>\n")
    assert b'<rsl xmlns="https://rslstandard.org/rsl">' in document
    assert read_rsl(document) == {"/t/abc/": ({"search", "ai-train"}, {"ai-input"})}


def test_tdmrep_reserves_unless_every_covered_use_is_permitted():
    policy = "https://refrain.example/t/abc/license.rsl"

    assert formats.tdm_headers(NOTHING, policy_url=policy) == {
        "tdm-reservation": "1",
        "tdm-policy": policy,
    }
    # data mining alone does not lift a reservation that also covers training
    assert formats.tdm_reserved({**NOTHING, MINING: True}) is True
    allowed = {**NOTHING, GENAI: True, TRAINING: True, MINING: True}
    assert formats.tdm_headers(allowed, policy_url=policy) == {"tdm-reservation": "0"}
    assert formats.tdmrep_rule("/t/abc/*", allowed, policy_url=policy) == {
        "location": "/t/abc/*",
        "tdm-reservation": 0,
    }


# --- Every format says what eligibility says, or less --------------------------------


@settings(max_examples=200, deadline=None, database=None)
@given(
    rules=st.fixed_dictionaries(
        {use: st.sampled_from(Rule.values) for use in USE_ORDER}
    ),
    decisions=st.fixed_dictionaries(
        {use: st.sampled_from(["", *Decision.values]) for use in USE_ORDER}
    ),
    defaults=st.fixed_dictionaries(
        {use: st.sampled_from([None, *Decision.values]) for use in USE_ORDER}
    ),
)
def test_every_format_says_what_the_rules_say_or_less(rules, decisions, defaults):
    # given a track's eligibility under random rules, decisions and defaults
    permitted = {
        use: is_eligible(rules[use], decisions[use], defaults[use]) for use in USE_ORDER
    }

    # when every signal of the track is rendered
    signals = track_signals(public_id="AbC-123_x", permitted=permitted, site=SITE)

    # then each format, read back, follows eligibility
    check_formats_follow(permitted, signals)


@settings(max_examples=60, deadline=None, database=None)
@given(tracks=st.lists(answers, max_size=12))
def test_the_site_documents_give_each_track_its_answer_or_the_default(tracks):
    # given tracks with random answers, in id order
    rows = [(f"track{i:04d}", permitted) for i, permitted in enumerate(tracks)]

    # when the site-wide documents are built with room for all of them
    built = site_documents(rows, site=SITE + "/", max_bytes=480_000)

    # then robots.txt, tdmrep.json and license.rsl give each track its own
    # answer where it differs from the default, and the default otherwise
    robots = parse_robots(built.robots_txt)
    rules = json.loads(built.tdmrep_json)
    tdm = {rule["location"]: rule["tdm-reservation"] for rule in rules}
    rsl = read_rsl(built.license_rsl)
    for public_id, permitted in rows:
        path = f"/t/{public_id}/"
        usage, signal = robots.get(("usage", path)), robots.get(("signal", path))
        expected_usage = formats.content_usage(permitted)
        assert (usage or robots[("usage", "/t/")]) == expected_usage
        assert (signal or robots[("signal", "/t/")]) == formats.content_signal(
            permitted
        )
        reserved = tdm.get(f"{path}*", tdm["/t/*"])
        assert reserved == int(formats.tdm_reserved(permitted))
        expected_rsl = formats.rsl_usage(permitted)
        got = rsl.get(path, rsl["/t/*"])
        assert got == (set(expected_rsl[0]), set(expected_rsl[1]))
    assert rules[-1] == {
        "location": "/t/*",
        "tdm-reservation": 1,
        "tdm-policy": f"{SITE}/license.rsl",
    }


# --- The site-wide documents -------------------------------------------------------


def test_robots_txt_states_the_default_once_and_only_the_tracks_that_differ():
    # given a track that allows nothing, one that allows only data mining
    # (which neither robots format can say) and one that allows input
    rows = [
        ("none", NOTHING),
        ("mining", {**NOTHING, MINING: True}),
        ("input", {**NOTHING, INFERENCE: True}),
    ]

    # when robots.txt is built
    robots = site_documents(rows, site=SITE, max_bytes=480_000).robots_txt

    # then only the third has lines of its own
    assert parse_robots(robots) == {
        ("usage", "/t/"): "train-ai=n, search=y",
        ("signal", "/t/"): "search=yes, ai-train=no, ai-input=no",
        ("signal", "/t/input/"): "search=yes, ai-train=no, ai-input=yes",
    }
    assert documents.TRUNCATED not in robots


def test_full_documents_stop_listing_and_stay_within_their_budget():
    # given far more permitting tracks than fit, with the longest public ids
    rows = [(f"{n:022d}", EVERYTHING) for n in range(5000)]

    # when the documents are built with room for a few
    built = site_documents(rows, site=SITE, max_bytes=4000)

    # then each stays within the budget, robots.txt says the list stops,
    # and what is listed is the first tracks, each with its own answer
    assert len(built.robots_txt.encode()) <= 4000
    assert len(built.tdmrep_json) <= 4000
    assert len(built.license_rsl) <= 4000
    assert built.robots_txt.endswith(documents.TRUNCATED + "\n")
    listed = [path for kind, path in parse_robots(built.robots_txt) if kind == "usage"]
    assert listed[0] == "/t/" and listed[1] == "/t/0000000000000000000000/"
    assert listed[1:] == [f"/t/{n:022d}/" for n in range(len(listed) - 1)]
    rules = json.loads(built.tdmrep_json)
    assert [r["tdm-reservation"] for r in rules] == [0] * (len(rules) - 1) + [1]
    assert list(read_rsl(built.license_rsl))[-1] == "/t/*"


def test_the_default_budget_lists_thousands_of_tracks_under_500_kib():
    # given a million-track catalogue where every track permits everything
    rows = ((f"{n:016d}", EVERYTHING) for n in range(1_000_000))

    # when the documents are built with the shipped budget
    built = site_documents(rows, site=SITE, max_bytes=480_000)

    # then robots.txt stays under the 500 KiB that parsers read, and lists
    # a few thousand tracks
    assert len(built.robots_txt.encode()) < 500 * 1024
    listed = built.robots_txt.count("Content-Usage: /t/0")
    assert 3_000 < listed < 5_000


def test_the_site_default_is_the_most_restrictive_answer():
    assert SITE_DEFAULT == NOTHING
    assert formats.tdm_reserved(SITE_DEFAULT) is True
    assert set(read_aipref(formats.content_usage(SITE_DEFAULT)).values()) == {
        False,
        True,  # search, which is not a use
    }


def test_the_command_prints_the_published_table():
    out = StringIO()

    call_command("signals_table", stdout=out)

    assert out.getvalue() == formats.mapping_table_markdown() + "\n"
