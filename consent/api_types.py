"""The JSON API's parameter types: what the OpenAPI schema says each parameter
takes, and what django-ninja checks before a view runs.

Every value list comes from the one definition it names (``Use``, ``State``,
``LicenseClass``, ``SORT_LABELS``), so the schema cannot drift from the code.
A value that does not fit is a 400 with one sentence (``config.api_errors``).
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

from catalog.models import LicenseClass
from catalog.selectors import SORT_LABELS
from consent.models import State
from consent.uses import Use

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
MAX_QUERY = 200  # as the list's form (catalog.forms.TrackFilterForm)
MAX_CURSOR = 400

# ``Literal[tuple(...)]`` is the documented way to build a Literal from values
# known at import; it gives every parameter its enum inline in the schema.
UseSlug = Literal[tuple(Use.values)]
StateName = Literal[tuple(State.values)]
LicenseName = Literal[tuple(LicenseClass.values)]
SortKey = Literal[tuple(SORT_LABELS)]
Eligibility = Literal["yes", "no"]


@dataclass(frozen=True)
class Matches:
    """A string that must match ``pattern`` (which the schema shows), else an
    error that says ``message`` instead of echoing the regular expression.

    Matched with ``re.search`` as JSON Schema does; the patterns are anchored.
    """

    pattern: str
    message: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        compiled = re.compile(self.pattern)
        message = self.message

        def check(value: str) -> str:
            if compiled.search(value) is None:
                raise PydanticCustomError("pattern_explained", message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        return json_schema


PublicId = Annotated[
    str,
    Matches(r"^[A-Za-z0-9_-]{1,22}$", "is not a track id (1 to 22 of A-Z a-z 0-9 _ -)"),
]
# The track's consent version as its ETag, quoted or not, or "*" (any version).
IfMatch = Annotated[
    str,
    Matches(
        r'^(\*|"[0-9]{1,10}"|[0-9]{1,10})$',
        'must be the track\'s consent version as its ETag, e.g. "3"',
    ),
]
# An Idempotency-Key is a structured-field string: printable ASCII.
IdempotencyKey = Annotated[
    str,
    Matches(r"^[ -~]{1,255}$", "must be 1 to 255 printable ASCII characters"),
]

# Text in a JSON body: the input guard (config.input_guard) refuses a NUL
# and a lone surrogate anywhere in a body, so the schema says so too.
Text = Annotated[
    str,
    Matches(r"^[^\x00\ud800-\udfff]*$", "must be text without NUL characters"),
]


def _not_a_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "is not a whole number")
    return value


# A whole number in a JSON body: 3 and 3.0 (JSON Schema's integers), never
# true or false (which pydantic would read as 1 and 0).
WholeNumber = Annotated[int, BeforeValidator(_not_a_boolean)]


# A track named by its ISRC (hyphenated or not) or its public id.
TrackIdentifier = Annotated[
    str,
    Matches(
        r"^[A-Za-z0-9_-]{1,22}$",
        "is not an ISRC (CC-XXX-YY-NNNNN) or a track id (1 to 22 of A-Z a-z 0-9 _ -)",
    ),
]


def iso_time(moment: datetime) -> str:
    """A time as the API writes it: ISO 8601 in UTC with a Z."""
    return moment.isoformat().replace("+00:00", "Z")
