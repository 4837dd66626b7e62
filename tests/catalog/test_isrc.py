import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from catalog.isrc import looks_like_isrc, normalise_isrc
from catalog.models import Track
from catalog.services import track_create


@pytest.mark.parametrize(
    "given_value, stored",
    [
        ("US-RC1-76-07839", "USRC17607839"),
        ("USRC17607839", "USRC17607839"),
        ("us-rc1-76-07839", "USRC17607839"),
        ("usrc17607839", "USRC17607839"),
        ("Us-Rc1-76-07839", "USRC17607839"),
        ("  US-RC1-76-07839\n", "USRC17607839"),
        ("ISRC US-RC1-76-07839", "USRC17607839"),
        ("ISRC:USRC17607839", "USRC17607839"),
        ("ISRC: US-RC1-76-07839", "USRC17607839"),
        ("isrc usrc17607839", "USRC17607839"),
        ("GB-A1B-24-00001", "GBA1B2400001"),
        ("FR-Z03-91-01231", "FRZ039101231"),
        # Iceland (IS) with a registrant starting "RC": the code itself begins
        # with "ISRC" and must not lose it to the optional prefix.
        ("IS-RCA-24-00001", "ISRCA2400001"),
        ("ISRCA2400001", "ISRCA2400001"),
        ("isrca2400001", "ISRCA2400001"),
        ("ISRC ISRCA2400001", "ISRCA2400001"),
    ],
)
def test_accepted_forms_normalise_to_12_characters(given_value, stored):
    assert normalise_isrc(given_value) == stored
    assert len(stored) == 12
    assert looks_like_isrc(given_value) is True


@pytest.mark.parametrize(
    "given_value",
    [
        "",
        "   ",
        "ISRC",
        "USRC1760783",  # 11 characters
        "USRC176078390",  # 13 characters
        "US-RC1-76-0783",  # designation too short
        "US-RC1-76-078390",  # designation too long
        "US-RC17-6-07839",  # hyphen in the wrong place
        "USR-C1-76-07839",  # hyphen in the wrong place
        "USRC1-76-07839",  # one hyphen
        "US-RC1-7607839",  # two hyphens
        "US-RC1-76-07839-",  # four hyphens
        "US--RC1-76-07839",  # doubled hyphen
        "US RC1 76 07839",  # spaces instead of hyphens
        "US_RC1_76_07839",  # underscores
        "US-RC1-7A-07839",  # letter in the year
        "USRC1A607839",  # letter in the year, compact
        "US-RC1-76-0783X",  # letter in the designation
        "USRC1760783O",  # letter O, not zero, in the designation
        "U1-RC1-76-07839",  # digit in the country code
        "US-R_1-76-07839",  # punctuation in the registrant
        "ISRC-US-RC1-76-07839",  # the prefix joined by a hyphen
        "USRC17607839X",
        "ÜS-RC1-76-07839",
    ],
)
def test_malformed_isrcs_are_refused_with_a_clear_message(given_value):
    with pytest.raises(ValidationError) as refused:
        normalise_isrc(given_value)

    assert refused.value.code == "invalid_isrc"
    assert refused.value.messages == [
        f"“{given_value}” is not a valid ISRC. Use the form CC-XXX-YY-NNNNN, "
        "for example US-RC1-76-07839."
    ]
    assert looks_like_isrc(given_value) is False


def test_none_is_refused():
    with pytest.raises(ValidationError):
        normalise_isrc(None)


_upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_digits = "0123456789"


@given(
    country=st.text(_upper, min_size=2, max_size=2),
    registrant=st.text(_upper + _digits, min_size=3, max_size=3),
    year=st.text(_digits, min_size=2, max_size=2),
    designation=st.text(_digits, min_size=5, max_size=5),
    hyphenated=st.booleans(),
    lower=st.booleans(),
    prefixed=st.booleans(),
)
def test_every_valid_isrc_round_trips(
    country, registrant, year, designation, hyphenated, lower, prefixed
):
    compact = country + registrant + year + designation
    text = f"{country}-{registrant}-{year}-{designation}" if hyphenated else compact
    if lower:
        text = text.lower()
    if prefixed:
        text = "ISRC " + text

    stored = normalise_isrc(text)

    assert stored == compact
    assert Track(isrc=stored).isrc_display == (
        f"{country}-{registrant}-{year}-{designation}"
    )


@pytest.mark.django_db
def test_a_normalised_isrc_is_stored_as_12_characters(user):
    track = track_create(
        artist=user, title="Night Drive", isrc=normalise_isrc("us-rc1-76-07839")
    )

    assert Track.objects.values_list("isrc", flat=True).get(pk=track.pk) == (
        "USRC17607839"
    )
    assert track.isrc_display == "US-RC1-76-07839"
