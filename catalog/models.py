import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


def new_public_id() -> str:
    """A random, URL-safe, non-sequential id (96 bits) for URLs and APIs."""
    return secrets.token_urlsafe(12)


def audio_upload_path(instance: "Track", filename: str) -> str:
    # Never keep the uploader's file name on disk: a random name, the
    # extension mutagen recognised (set by the service).
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"audio/{secrets.token_hex(16)}.{suffix}"


class LicenseClass(models.TextChoices):
    INDEPENDENT = "independent", "Independent"
    LABEL = "label", "Label-licensed"


class Label(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Track(models.Model):
    public_id = models.CharField(max_length=22, default=new_public_id, editable=False)
    # No single-column index: every index below leads with the artist.
    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="tracks",
        db_index=False,
    )
    title = models.CharField(max_length=300)
    isrc = models.CharField(
        "ISRC",
        max_length=12,
        null=True,
        blank=True,
        help_text="Stored as its 12 normalised characters, e.g. USRC17607839.",
    )
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    license_class = models.CharField(
        max_length=16, choices=LicenseClass.choices, default=LicenseClass.INDEPENDENT
    )
    label = models.ForeignKey(
        Label, on_delete=models.PROTECT, null=True, blank=True, related_name="tracks"
    )
    audio_file = models.FileField(upload_to=audio_upload_path, blank=True)
    audio_mime_type = models.CharField(max_length=64, blank=True)
    uploaded_at = models.DateTimeField(default=timezone.now)
    # "Last change" on the track list: bumped by every service that changes
    # the track (metadata, licence class, and later its consent).
    updated_at = models.DateTimeField(default=timezone.now)
    # The number of ledger rows of this track; bumped under the row lock by
    # every consent change (``consent.services``). Also the API's ETag.
    consent_version = models.PositiveIntegerField(default=0, db_default=0)

    class Meta:
        constraints = [
            # A constraint rather than unique=True: no extra LIKE index.
            models.UniqueConstraint(
                fields=["public_id"], name="catalog_track_public_id_unique"
            ),
            models.UniqueConstraint(
                fields=["isrc"],
                condition=models.Q(isrc__isnull=False),
                name="catalog_track_isrc_unique",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(license_class=LicenseClass.LABEL, label__isnull=False)
                    | models.Q(
                        license_class=LicenseClass.INDEPENDENT, label__isnull=True
                    )
                ),
                name="catalog_track_label_matches_class",
            ),
            models.CheckConstraint(
                condition=models.Q(isrc__isnull=True)
                | models.Q(isrc__regex=r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$"),
                name="catalog_track_isrc_normalised",
            ),
        ]
        indexes = [
            # One index per sort of the artist's list; the id breaks ties so
            # keyset pagination is exact.
            models.Index(
                fields=["artist", "-uploaded_at", "-id"],
                name="catalog_track_artist_upl",
            ),
            models.Index(
                fields=["artist", "title", "id"], name="catalog_track_artist_title"
            ),
            models.Index(
                fields=["artist", "-updated_at", "-id"], name="catalog_track_artist_chg"
            ),
            models.Index(
                fields=["artist", "license_class", "-uploaded_at", "-id"],
                name="catalog_track_artist_cls",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("tracks:detail", kwargs={"public_id": self.public_id})

    @property
    def isrc_display(self) -> str:
        """The ISRC in its hyphenated form, CC-XXX-YY-NNNNN."""
        if not self.isrc:
            return ""
        i = self.isrc
        return f"{i[:2]}-{i[2:5]}-{i[5:7]}-{i[7:]}"

    @property
    def duration_display(self) -> str:
        if self.duration_ms is None:
            return ""
        seconds = round(self.duration_ms / 1000)
        return f"{seconds // 60}:{seconds % 60:02d}"


class ArtistCatalogStats(models.Model):
    """Track counts per artist and licence class, kept by the catalog services.

    The track list shows a total on every page; counting 20,000 rows on each
    request is the slowest part of a naive list, so the services keep it here.
    """

    artist = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    license_class = models.CharField(max_length=16, choices=LicenseClass.choices)
    track_count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["artist", "license_class"],
                name="catalog_stats_artist_class_uniq",
            )
        ]

    def __str__(self) -> str:
        return f"{self.artist_id} {self.license_class}: {self.track_count}"
