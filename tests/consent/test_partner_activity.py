"""What an artist sees of the AI partners (``consent.partners.activity``): on
the track page, who checked the track, the last answer each was given, what
each acknowledged and which withdrawals it still owes; on the track list, the
filter of tracks whose acknowledgement is overdue."""

import html
import re
from datetime import datetime, timedelta

import pytest
from django.utils import dateformat, timezone

from consent.models import Acknowledgement, Partner, PartnerLookupDay, TrackConsent
from consent.partners import (
    partner_activity_for_track,
    withdrawals_overdue,
    withdrawals_owed,
)
from consent.partners.acknowledgements import withdrawals_owed_for_track
from tests.consent.helpers import GENAI, INFERENCE, MINING, TRAINING
from tests.consent.withdrawals import change, happening_at, withdraw
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

LIST = "/tracks/"
_SELECT = re.compile(r'id="sel-([A-Za-z0-9_-]+)"')


def _ago(**delta) -> datetime:
    return timezone.now() - timedelta(**delta)


def _on(moment, format_string: str) -> str:
    """A date or time as the pages write it (the site's time zone)."""
    if isinstance(moment, datetime):
        moment = timezone.localtime(moment)
    return dateformat.format(moment, format_string)


def _partner(name="Acme AI", *, ack_days=30, created=None) -> Partner:
    return Partner.objects.create(
        name=name, ack_days=ack_days, created_at=created or _ago(days=90)
    )


def _looked_up(partner, track, *, day, checks, use=GENAI, allowed=False, at=None):
    return PartnerLookupDay.objects.create(
        partner=partner,
        track=track,
        day=day,
        checks=checks,
        last_use=use,
        last_eligible=allowed,
        last_checked_at=at
        or timezone.make_aware(datetime.combine(day, datetime.min.time())),
    )


def _acknowledged(partner, track, *, use=GENAI, status="removed", **fields):
    return Acknowledgement.objects.create(
        partner=partner,
        track=track,
        use=use,
        consent_version=fields.pop("consent_version", track.consent_version),
        status=status,
        dataset=fields.pop("dataset", "Acme Music v2.1"),
        **fields,
    )


def read(response) -> str:
    """The words of the track page's "AI companies" section: tags part words,
    white space collapses, no space before a full stop or comma."""
    page = response.text
    start = page.index('<section aria-labelledby="partners-heading"')
    part = page[start : page.index("<h2>History</h2>", start)]
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", part))).strip()
    return re.sub(r"\s+([.,])", r"\1", text)


# --- look-ups -------------------------------------------------------------------


def test_the_track_page_shows_each_partners_look_ups_and_last_answer(
    signed_in, artist, make_track
):
    # given a track two partners checked: one on two days, one once
    track = make_track(artist=artist, title="Night Drive")
    acme, beta = _partner("Acme AI"), _partner("Beta Labs")
    today = timezone.localdate()
    last = timezone.make_aware(datetime.combine(today, datetime.min.time())) + (
        timedelta(hours=14, minutes=3)
    )
    _looked_up(acme, track, day=today, checks=3, use=GENAI, allowed=False, at=last)
    _looked_up(acme, track, day=today - timedelta(days=1), checks=1, allowed=True)
    _looked_up(beta, track, day=today - timedelta(days=2), checks=1, use=MINING)

    # when the artist opens the track page
    response = signed_in.get(track.get_absolute_url())

    # then each partner, by name, says how often and what it was told last
    assert response.status_code == 200
    text = read(response)
    assert text.index("Acme AI") < text.index("Beta Labs")
    assert (
        f"Acme AI Checks Checked 3 times on {_on(today, 'j M')}, 1 time on "
        f"{_on(today - timedelta(days=1), 'j M')}. Last answer: Generative AI "
        f"training — not allowed, {_on(last, 'j M')} 14:03."
    ) in text
    assert (
        f"Beta Labs Checks Checked 1 time on {_on(today - timedelta(days=2), 'j M')}."
        " Last answer: Data mining — not allowed"
    ) in text
    assert "No AI company has checked this track yet." not in text
    assert "Overdue" not in text


def test_many_days_of_look_ups_are_summed_up_with_each_day_behind_a_disclosure(
    signed_in, artist, make_track
):
    # given checks on seven of the last 30 days, and one 40 days ago
    track = make_track(artist=artist)
    acme = _partner()
    today = timezone.localdate()
    for offset in range(7):
        _looked_up(acme, track, day=today - timedelta(days=offset * 4), checks=2)
    _looked_up(acme, track, day=today - timedelta(days=40), checks=50)

    response = signed_in.get(track.get_absolute_url())

    # then a summary of the 30 days comes first (the old day not counted),
    # then the last answer, then each day behind "Checks day by day"
    text = read(response)
    assert (
        f"Checked 14 times on 7 days in the last 30 days, most recently on "
        f"{_on(today, 'j M')}. Last answer: Generative AI training — not "
        f"allowed, {_on(today, 'j M')} 00:00. Checks day by day 2 times on "
        f"{_on(today, 'j M')} 2 times on {_on(today - timedelta(days=4), 'j M')}"
    ) in text
    assert f"2 times on {_on(today - timedelta(days=24), 'j M')}" in text
    assert "50 times" not in text
    assert '<details class="day-list">' in response.text
    assert "<summary>Checks day by day</summary>" in response.text


def test_a_partner_that_checked_long_ago_shows_its_last_answer_with_the_year(
    signed_in, artist, make_track
):
    track = make_track(artist=artist)
    acme = _partner()
    long_ago = timezone.localdate() - timedelta(days=45)
    checked = _looked_up(
        acme, track, day=long_ago, checks=4, use=TRAINING, allowed=True
    )

    text = read(signed_in.get(track.get_absolute_url()))

    assert (
        "Acme AI Checks Not checked in the last 30 days. Last answer: Other AI "
        f"training — allowed, {_on(checked.last_checked_at, 'j M Y, H:i')}."
    ) in text


def test_a_track_no_partner_checked_says_so_in_one_sentence(
    signed_in, artist, make_track
):
    # given partners that checked and acknowledged other tracks only
    track = make_track(artist=artist)
    other = make_track(artist=artist)
    acme = _partner()
    _looked_up(acme, other, day=timezone.localdate(), checks=1)
    _acknowledged(acme, other)

    text = read(signed_in.get(track.get_absolute_url()))

    assert text == "AI companies No AI company has checked this track yet."


# --- acknowledgements -----------------------------------------------------------


def test_the_track_page_shows_what_each_partner_acknowledged(
    signed_in, artist, make_track
):
    # given a withdrawal the partner removed the track for, and a decision
    # it applied
    track = make_track(artist=artist)
    acme = _partner()
    withdraw(track, GENAI)
    removed = _acknowledged(acme, track, use=GENAI, note="Removed before the next run.")
    applied = _acknowledged(
        acme,
        track,
        use=TRAINING,
        status="applied",
        consent_version=1,
        dataset="Acme Music",
        created_at=_ago(days=1),
    )

    text = read(signed_in.get(track.get_absolute_url()))

    # then both, newest first, in words, with no check on record
    assert (
        "Acme AI Checks No checks of this track on record. Acknowledgements "
        f"Removed from dataset “Acme Music v2.1” on {_on(removed.created_at, 'j M Y')}."
        " For Generative AI training. Their note: “Removed before the next run.” "
        "Applied your decision (version 1) to dataset “Acme Music” on "
        f"{_on(applied.created_at, 'j M Y')}. For Other AI training."
    ) in text
    assert "not yet acknowledged" not in text


def test_only_the_newest_acknowledgements_are_listed_with_a_count_of_the_rest(
    signed_in, artist, make_track
):
    track = make_track(artist=artist)
    acme = _partner()
    for days in range(7):
        _acknowledged(
            acme,
            track,
            status="applied",
            consent_version=0,
            dataset=f"Set {days}",
            created_at=_ago(days=days),
        )

    response = signed_in.get(track.get_absolute_url())

    listed = re.findall(r"dataset “(Set \d)”", read(response))
    assert listed == ["Set 0", "Set 1", "Set 2", "Set 3", "Set 4"]
    assert "And 2 earlier acknowledgements." in read(response)


def test_a_withdrawal_not_yet_acknowledged_shows_when_it_is_due(
    signed_in, artist, make_track
):
    # given a partner with 30 days to acknowledge, and a withdrawal today
    track = make_track(artist=artist)
    _partner(ack_days=30)
    withdraw(track, GENAI)
    withdrawn = track.ledger.get(consent_version=2).created_at

    response = signed_in.get(track.get_absolute_url())

    # then it is owed, due in 30 days, not overdue
    due = withdrawn + timedelta(days=30)
    assert (
        "Acknowledgements Withdrawal of Generative AI training not yet "
        f"acknowledged, due {_on(due, 'j M Y')}. Withdrawn on "
        f"{_on(withdrawn, 'j M Y')}."
    ) in read(response)
    assert "Overdue" not in read(response)
    assert "partner-card-overdue" not in response.text


def test_an_overdue_withdrawal_says_since_when_with_a_badge(
    signed_in, artist, make_track
):
    # given a partner with one day to acknowledge, a withdrawal three days
    # ago, and a partner added after it (which owes nothing)
    track = make_track(artist=artist)
    _partner("Acme AI", ack_days=1, created=_ago(days=10))
    withdraw(track, MINING, at=_ago(days=3))
    _partner("Late Corp", ack_days=1, created=_ago(days=1))
    withdrawn = track.ledger.get(consent_version=2).created_at

    response = signed_in.get(track.get_absolute_url())

    # then the badge says "Overdue" in words, beside the partner and the line
    text = read(response)
    assert text.startswith("AI companies ")
    assert (
        "Acme AI ! Overdue Checks No checks of this track on record. "
        "Acknowledgements ! Overdue Withdrawal of Data mining not yet "
        "acknowledged, overdue since "
        f"{_on(withdrawn + timedelta(days=1), 'j M Y')}. Withdrawn on "
        f"{_on(withdrawn, 'j M Y')}."
    ) in text
    assert "Late Corp" not in text
    # the mark is decoration: screen readers hear the word
    assert (
        '<span class="badge badge-overdue"><span aria-hidden="true">! </span>'
        "Overdue</span>"
    ) in response.text


def test_a_withdrawal_acknowledged_or_allowed_again_is_no_longer_owed(
    signed_in, artist, make_track
):
    # given two withdrawals: one acknowledged, one allowed again since
    track = make_track(artist=artist)
    acme = _partner(ack_days=1, created=_ago(days=10))
    withdraw(track, GENAI, at=_ago(days=3))
    _acknowledged(acme, track, use=GENAI)
    withdraw(track, INFERENCE, at=_ago(days=2))
    change(track, INFERENCE, "granted")

    text = read(signed_in.get(track.get_absolute_url()))

    assert "not yet acknowledged" not in text
    assert "Overdue" not in text
    assert "Removed from dataset “Acme Music v2.1”" in text


def test_another_artists_track_page_is_a_404_and_shows_nothing_of_it(
    signed_in, make_track
):
    # given another artist's track that a partner checked and owes
    theirs = make_track(artist=UserFactory())
    acme = _partner("Acme AI", ack_days=1, created=_ago(days=10))
    withdraw(theirs, at=_ago(days=3))
    _looked_up(acme, theirs, day=timezone.localdate(), checks=2)

    response = signed_in.get(theirs.get_absolute_url())

    assert response.status_code == 404
    assert "Acme AI" not in response.text


# --- the selector -----------------------------------------------------------------


def test_the_selector_moves_with_now(make_track):
    # given a withdrawal owed within 30 days
    track = make_track()
    _partner(ack_days=30)
    withdraw(track, GENAI)

    # when read now and 31 days on
    [today] = partner_activity_for_track(track)
    [later] = partner_activity_for_track(track, now=timezone.now() + timedelta(days=31))

    # then it is due, then overdue
    assert [(w.use_name, w.overdue) for w in today.owed] == [
        ("Generative AI training", False)
    ]
    assert (today.overdue, later.overdue) == (False, True)
    assert later.owed[0].due == today.owed[0].due


def _busy_partners(track, names: list[str]) -> None:
    """Partners that each checked the track on three recent days and once
    long ago, acknowledged it six times and owe its withdrawals."""
    today = timezone.localdate()
    for name in names:
        partner = _partner(name, ack_days=1, created=_ago(days=9))
        for offset in (0, 1, 2, 100):
            _looked_up(partner, track, day=today - timedelta(days=offset), checks=1)
        for _ in range(6):
            _acknowledged(partner, track, use=TRAINING, consent_version=0)


def test_the_selector_runs_a_fixed_number_of_queries(
    make_track, django_assert_num_queries
):
    # given a track withdrawn for two uses, and one busy partner
    track = make_track()
    withdraw(track, GENAI, at=_ago(days=3))
    withdraw(track, MINING, at=_ago(days=2))
    _busy_partners(track, ["Partner 0"])
    # the look-up days, the acknowledgements, the withdrawals in force, the
    # partners, their acknowledged versions
    with django_assert_num_queries(5):
        one = partner_activity_for_track(track)

    # when there are nine
    _busy_partners(track, [f"Partner {number}" for number in range(1, 9)])
    with django_assert_num_queries(5):
        nine = partner_activity_for_track(track)

    # then the same queries read all of it
    assert len(one) == 1 and len(nine) == 9
    for activity in nine:
        assert len(activity.days) == 3
        assert activity.last_answer is not None
        assert len(activity.acknowledgements) == 5
        assert activity.earlier_acknowledgements == 1
        assert [owed.use_name for owed in activity.owed] == [
            "Generative AI training",
            "Data mining",
        ]
        assert activity.overdue


def test_the_owed_withdrawals_of_a_track_agree_with_each_partners(make_track):
    # given partners of every kind: before and after the withdrawals, with an
    # old, a current and another use's acknowledgement, short and long
    # deadlines; and withdrawals of every kind: owed, allowed again, made
    # twice, on another track
    track, other = make_track(), make_track()
    early = _partner("Early", ack_days=1, created=_ago(days=20))
    middle = _partner("Middle", ack_days=5, created=_ago(days=4))
    late = _partner("Late", ack_days=30, created=_ago(days=1))
    none = _partner("Never", ack_days=2, created=_ago(days=30))
    withdraw(track, GENAI, at=_ago(days=10))
    withdraw(track, GENAI, at=_ago(days=3))  # again: only this one is owed
    withdraw(track, TRAINING, at=_ago(days=6))
    withdraw(track, INFERENCE, at=_ago(days=5))
    with happening_at(_ago(days=2)):
        change(track, INFERENCE, "granted")  # allowed again: owed by nobody
    withdraw(track, MINING, at=_ago(hours=12))
    withdraw(other, GENAI, at=_ago(days=3))
    versions = dict(
        track.ledger.filter(old_eligible=True, new_eligible=False).values_list(
            "use", "consent_version"
        )
    )
    _acknowledged(early, track, use=GENAI, consent_version=versions[GENAI] - 2)
    _acknowledged(middle, track, use=TRAINING, consent_version=versions[TRAINING])
    _acknowledged(late, track, use=MINING, consent_version=versions[MINING] + 0)
    _acknowledged(none, other, use=GENAI, consent_version=other.consent_version)

    # when both ways are read, at a few moments
    for now in (timezone.now(), _ago(days=-3), _ago(days=-40)):
        together = withdrawals_owed_for_track(track, now)

        # then they give the same withdrawals, due dates and overdue flags
        for partner in (early, middle, late, none):
            mine = [
                (entry.pk, due, overdue)
                for owing, entry, due, overdue in together
                if owing == partner
            ]
            overdue = set(
                withdrawals_overdue(partner, now).values_list("pk", flat=True)
            )
            expected = [
                (
                    entry.pk,
                    entry.created_at + timedelta(days=partner.ack_days),
                    entry.pk in overdue,
                )
                for entry in withdrawals_owed(partner).filter(track=track)
            ]
            assert mine == expected, (partner.name, now)
    assert {owing.name for owing, *_ in withdrawals_owed_for_track(track)} == {
        "Early",
        "Middle",
        "Never",
    }


# --- the track list's filter ----------------------------------------------------------


@pytest.fixture
def owing(artist, make_track):
    """The artist's tracks: one overdue, one owed but not yet due, one
    acknowledged, one never withdrawn; and another artist's overdue track."""
    acme = _partner("Acme AI", ack_days=2, created=_ago(days=30))
    tracks = {
        "overdue": make_track(artist=artist, title="Overdue"),
        "owed": make_track(artist=artist, title="Owed"),
        "acknowledged": make_track(artist=artist, title="Acknowledged"),
        "quiet": make_track(artist=artist, title="Quiet"),
        "theirs": make_track(artist=UserFactory(), title="Theirs"),
    }
    withdraw(tracks["overdue"], GENAI, at=_ago(days=5))
    withdraw(tracks["owed"], GENAI, at=_ago(days=1))
    withdraw(tracks["acknowledged"], MINING, at=_ago(days=5))
    _acknowledged(acme, tracks["acknowledged"], use=MINING)
    withdraw(tracks["theirs"], GENAI, at=_ago(days=5))
    tracks["partner"] = acme
    return tracks


def test_the_list_filter_shows_exactly_the_tracks_whose_acknowledgement_is_overdue(
    signed_in, owing
):
    response = signed_in.get(LIST, {"ack": "overdue"})

    assert response.status_code == 200
    assert _SELECT.findall(response.text) == [owing["overdue"].public_id]
    assert re.search(r'id="track-total">\s*1 track matches your filters', response.text)
    assert '<option value="overdue" selected>Acknowledgement overdue</option>' in (
        response.text
    )
    # unfiltered, all four of the artist's tracks
    assert len(_SELECT.findall(signed_in.get(LIST).text)) == 4


def test_the_filter_is_labelled_and_combines_with_the_others(signed_in, owing):
    page = signed_in.get(LIST).text
    assert '<label for="id_ack">AI companies</label>' in page
    assert '<select name="ack" id="id_ack">' in page

    mined = signed_in.get(LIST, {"ack": "overdue", "use": GENAI, "eligible": "no"})
    nothing = signed_in.get(LIST, {"ack": "overdue", "q": "Quiet"})

    assert _SELECT.findall(mined.text) == [owing["overdue"].public_id]
    assert _SELECT.findall(nothing.text) == []
    assert "No AI company is late acknowledging a withdrawal of a track that " in (
        nothing.text
    )


def test_an_unknown_value_of_the_filter_is_reported_and_ignored(signed_in, owing):
    response = signed_in.get(LIST, {"ack": "late"})

    assert "Some filters were not understood and were ignored" in response.text
    assert len(_SELECT.findall(response.text)) == 4


def test_the_filtered_list_is_never_served_from_a_stale_cache(signed_in, owing):
    # given the filtered list, read once
    assert len(_SELECT.findall(signed_in.get(LIST, {"ack": "overdue"}).text)) == 1

    # when the partner acknowledges, which changes no track of the list
    _acknowledged(owing["partner"], owing["overdue"], use=GENAI)

    # then the next read no longer lists the track
    assert _SELECT.findall(signed_in.get(LIST, {"ack": "overdue"}).text) == []


def test_a_bulk_change_of_all_that_match_keeps_the_filter(signed_in, owing):
    # given the filtered list, whose bulk form carries the filter
    page = signed_in.get(LIST, {"ack": "overdue"}).text
    assert '<input type="hidden" name="f_ack" value="overdue">' in page

    # when the artist sets "Data mining" to Yes on all that match
    response = signed_in.post(
        "/tracks/bulk/",
        {
            "use": MINING,
            "state": "granted",
            "scope": "all",
            "confirmed": "yes",
            "f_ack": "overdue",
        },
    )

    # then only the overdue track changed
    assert response.status_code == 302
    granted = TrackConsent.objects.filter(use=MINING, decision="granted")
    assert [row.track_id for row in granted] == [owing["overdue"].pk]
