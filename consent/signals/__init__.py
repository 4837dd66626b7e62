"""Public signals: each track's AI-use answer in every machine-readable format.

* ``formats``: the one mapping table (Refrain's uses to each format's keys)
  and the pure encoders of one answer (``{use: bool}``) per format;
* ``documents``: everything published, rendered from answers alone (one
  track's ``TrackSignals``; the site-wide robots.txt, tdmrep.json and
  license.rsl);
* ``site``: the site-wide documents built from the database and cached per
  change (import it from ``consent.signals.site``: this package's names are
  the pure ones, which ``consent.receipts`` and the models' layer may use);
* ``public_views`` and ``urls``: what is served;
* ``tags``: the answer inside the audio (mutagen) and where the tagged copies
  live (``consent.services.tagged_audio`` writes and serves them);
* ``readers``, ``comparisons`` and ``drift``: the nightly check that reads
  every signal back and compares it with the stored eligibility and the
  ledger (``manage.py check_signals``).

To render every signal of a track in process (as the drift check does)::

    signals = track_signals(
        public_id=track.public_id,
        permitted=permitted_for_track(track=track),  # consent.selectors
        site=settings.REFRAIN_SITE_URL,
    )
    signals.headers, signals.cawg, signals.rsl, signals.content_signal
"""

from consent.signals.documents import (
    SITE_DEFAULT,
    SiteDocuments,
    SiteDocumentsBuilder,
    TrackSignals,
    site_documents,
    track_path,
    track_signals,
)
from consent.signals.formats import MAPPING, UseKeys, mapping_table_markdown

__all__ = [
    "MAPPING",
    "SITE_DEFAULT",
    "SiteDocuments",
    "SiteDocumentsBuilder",
    "TrackSignals",
    "UseKeys",
    "mapping_table_markdown",
    "site_documents",
    "track_path",
    "track_signals",
]
