"""The JSON API at /api/v1/ (OpenAPI at /api/v1/openapi.json, docs at /api/v1/docs)."""

from ninja import NinjaAPI

from consent.api import router as consent_router
from consent.platform_api import router as catalog_router

api = NinjaAPI(
    title="Refrain API",
    version="1",
    description="Consent for AI uses of music, per track and per use.",
    urls_namespace="api-1",
)
api.add_router("", catalog_router)
api.add_router("", consent_router)
