"""ISRC (ISO 3901) parsing: ``CC-XXX-YY-NNNNN``, stored as 12 characters."""

import re

from django.core.exceptions import ValidationError

_ISRC = re.compile(
    r"^(?P<country>[A-Z]{2})-?(?P<registrant>[A-Z0-9]{3})-?(?P<year>[0-9]{2})-?"
    r"(?P<designation>[0-9]{5})$"
)


def normalise_isrc(value: str) -> str:
    """Return the 12-character form of an ISRC, or raise ``ValidationError``.

    Accepts the hyphenated form ``CC-XXX-YY-NNNNN`` or the compact one, in any
    case, with surrounding spaces and an optional ``ISRC`` prefix.
    """
    text = (value or "").strip().upper()
    # An Icelandic code can itself begin with "ISRC" (IS-RCA-24-00001 is
    # ISRCA2400001), so the prefix is only stripped when the text as given is
    # not already an ISRC.
    if text.startswith("ISRC") and not _ISRC.match(text):
        text = text[4:].lstrip(" :")
    match = _ISRC.match(text)
    if not match or (text.count("-") not in (0, 3)):
        raise ValidationError(
            "“%(value)s” is not a valid ISRC. Use the form CC-XXX-YY-NNNNN, "
            "for example US-RC1-76-07839.",
            code="invalid_isrc",
            params={"value": value},
        )
    return "".join(match.groups())


def looks_like_isrc(value: str) -> bool:
    try:
        normalise_isrc(value)
    except ValidationError:
        return False
    return True
