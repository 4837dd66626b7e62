"""The JSON API at /api/v1/ (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs).

Every error is ``{"detail": "<sentence>"}``; a parameter that does not match its
type in the schema is a 400 (``config.api_errors``), never pydantic's 422 list.
"""

from config.api_errors import RefrainAPI, answer_validation_errors_with_400
from consent.api import router as consent_router
from consent.platform_api import router as catalog_router

api = RefrainAPI(
    title="Refrain API",
    version="1",
    description="Consent for AI uses of music, per track and per use. "
    'Every error answers `{"detail": "…"}` with a sentence saying what is wrong; '
    "a parameter or body that does not match this schema is a 400.",
    urls_namespace="api-1",
)
answer_validation_errors_with_400(api)
api.add_router("", catalog_router)
api.add_router("", consent_router)
