"""Shared helpers of the consent tests."""

from catalog.importer import CatalogRow
from catalog.models import LicenseClass, Track
from consent.services import catalog_import


def track_reclassify(track: Track, *, license_class: str, label: str = "") -> bool:
    """Move a track to another licence class (``label``: the label's name) the
    way production does: a catalogue import row for its ISRC, everything else
    unchanged. Returns whether the import updated the track; ``track`` is
    reloaded."""
    track.refresh_from_db()
    assert track.isrc, "only tracks with an ISRC are in the catalogue import"
    report = catalog_import(
        rows=[
            CatalogRow(
                line=2,
                isrc=track.isrc,
                title=track.title,
                artist_email=track.artist.email,
                license_class=license_class,
                label=label if license_class == LicenseClass.LABEL else "",
                duration_ms=track.duration_ms,
            )
        ]
    )
    assert report.rejected == 0, report.as_dict()
    track.refresh_from_db()
    return report.updated == 1
