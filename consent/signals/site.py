"""The site-wide signal documents as served: robots.txt,
``/.well-known/tdmrep.json`` and ``/license.rsl``, built from the database at
most once per change and cached, never built per request.

The cache key is the partners' change-feed position (``feed_position``, the
highest feed row): every change of any track's eligibility (a decision, a
default, a policy run, a licence class, an import) is appended there by the
fan-out, under a lock, in commit order, so the position grows with every
change and never goes back, and reading it is one index probe. The documents
are therefore exactly as fresh as what partners pull, a moment after the
commit (the fan-out follows the change's doorbell). The position is read
before the build, so a change that commits during a build moves it and the
next request builds again. The key also holds a fingerprint of what shapes
the documents besides the data (``FORMAT_VERSION``, the site URL and the size
budget), so a deploy that changes them is not served an old copy.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache

from consent.partners import feed_position
from consent.selectors import permitted_tracks
from consent.signals.documents import SiteDocuments, SiteDocumentsBuilder

# Bump when the documents' shape changes for the same data.
FORMAT_VERSION = 1
# Tracks read per query while building.
CHUNK = 2000
DOCUMENTS = {
    "robots.txt": "robots_txt",
    "tdmrep.json": "tdmrep_json",
    "license.rsl": "license_rsl",
}


def site_documents_build() -> SiteDocuments:
    """Build the three documents from the stored eligibility, reading the
    tracks that permit something in id order, ``CHUNK`` at a time, until
    every document is full or no track is left (flat memory)."""
    builder = SiteDocumentsBuilder(
        site=settings.REFRAIN_SITE_URL, max_bytes=settings.REFRAIN_SIGNALS_MAX_BYTES
    )
    after = 0
    while builder.accepting:
        rows = permitted_tracks(after_id=after, limit=CHUNK)
        for _, public_id, permitted in rows:
            builder.add(public_id, permitted)
        if len(rows) < CHUNK:
            break
        after = rows[-1][0]
    return builder.build()


def site_documents_version() -> str:
    """What the cached documents are keyed on: the shape's fingerprint and
    the change feed's position."""
    shape = (
        f"{FORMAT_VERSION}\0{settings.REFRAIN_SITE_URL}\0"
        f"{settings.REFRAIN_SIGNALS_MAX_BYTES}"
    )
    fingerprint = hashlib.sha256(shape.encode()).hexdigest()[:12]
    return f"{fingerprint}:{feed_position()}"


def _key(version: str, name: str) -> str:
    return f"signals:site:{version}:{name}"


def site_document_cached(name: str, *, version: str | None = None):
    """The cached copy of document ``name`` for ``version`` (default: the
    current one), or None when there is none."""
    return cache.get(_key(version or site_documents_version(), name))


def site_document(name: str) -> str | bytes:
    """Document ``name`` (a key of ``DOCUMENTS``) as served: the cached copy
    of the current version, or all three built and cached at once."""
    if name not in DOCUMENTS:
        raise KeyError(name)
    version = site_documents_version()
    value = site_document_cached(name, version=version)
    if value is None:
        documents = site_documents_build()
        built = {
            _key(version, other): getattr(documents, attribute)
            for other, attribute in DOCUMENTS.items()
        }
        cache.set_many(built, timeout=settings.REFRAIN_SIGNALS_CACHE_SECONDS)
        value = built[_key(version, name)]
    return value
