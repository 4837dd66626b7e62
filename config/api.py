"""The JSON API at /api/v1/ (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs).

Every error is ``{"code", "message", "detail"}``: a stable code, a sentence,
and the sentence again; a parameter that does not match its type in the
schema is a 400 ``invalid_request`` (``config.api_errors``), never pydantic's
422 list.
"""

from config.api_errors import RefrainAPI, answer_errors_as_json
from consent.api import router as consent_router
from consent.export_api import router as export_router
from consent.partner_api import router as partner_router
from consent.platform_api import router as catalog_router
from consent.public_api import router as public_router

api = RefrainAPI(
    title="Refrain API",
    version="1",
    description="Consent for AI uses of music, per track and per use. "
    "Artists call with a personal access token or their session; partners "
    "with a `partner` API key and the platform's catalogue feed with a "
    "`catalog` key, as `Authorization: Bearer <key>`; each key has a rate "
    "limit per minute (429 with `Retry-After`). Every error answers "
    '`{"code": "…", "message": "…", "detail": "…"}`: a stable code and a '
    "sentence saying what is wrong (`detail` repeats it); a parameter or body "
    "that does not match this schema is a 400 `invalid_request`.",
    urls_namespace="api-1",
)
answer_errors_as_json(api)
api.add_router("", catalog_router)
api.add_router("", consent_router)
api.add_router("", partner_router)
api.add_router("", export_router)
api.add_router("", public_router)
