"""Shared helpers of the catalog tests: real audio files, counts, listings."""

import io
import os
import struct
import wave
from pathlib import Path

from django.db.models import Count

from catalog.models import ArtistCatalogStats, Track


def wav_bytes(*, seconds: float = 1.0, rate: int = 8000) -> bytes:
    """A real PCM WAV file (mono, 16-bit, silence), written by ``wave``."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def flac_bytes(
    *, title: str | None = None, seconds: int = 2, rate: int = 44100
) -> bytes:
    """A minimal FLAC file built by hand: the ``fLaC`` marker, a STREAMINFO
    block (stereo, 16-bit, ``seconds`` long) and, with ``title``, a
    VORBIS_COMMENT block carrying it. Enough for mutagen to read it."""
    total_samples = seconds * rate
    streaminfo = (
        struct.pack(">HH", 4096, 4096)  # min and max block size
        + (0).to_bytes(3, "big")  # min frame size (unknown)
        + (0).to_bytes(3, "big")  # max frame size (unknown)
        # sample rate (20 bits), channels - 1 (3), bits per sample - 1 (5),
        # total samples (36)
        + ((rate << 44) | (1 << 41) | (15 << 36) | total_samples).to_bytes(8, "big")
        + bytes(16)  # MD5 of the audio (unknown)
    )
    blocks = [(0, streaminfo)]
    if title is not None:
        vendor = b"refrain-tests"
        comment = f"TITLE={title}".encode()
        blocks.append(
            (
                4,
                struct.pack("<I", len(vendor))
                + vendor
                + struct.pack("<I", 1)
                + struct.pack("<I", len(comment))
                + comment,
            )
        )
    data = b"fLaC"
    for index, (kind, body) in enumerate(blocks):
        last = 0x80 if index == len(blocks) - 1 else 0
        data += bytes([last | kind]) + len(body).to_bytes(3, "big") + body
    return data


def media_files(root: Path) -> list[str]:
    """Every file under ``root``, as sorted paths relative to it."""
    return sorted(
        str(Path(folder, name).relative_to(root))
        for folder, _, names in os.walk(root)
        for name in names
    )


def kept_counts() -> dict[tuple[int, str], int]:
    """``ArtistCatalogStats`` as {(artist id, licence class): count}, zeros
    left out (a class an artist no longer has keeps a row at 0)."""
    return {
        (row.artist_id, row.license_class): row.track_count
        for row in ArtistCatalogStats.objects.all()
        if row.track_count
    }


def fresh_counts() -> dict[tuple[int, str], int]:
    """The same numbers, counted from the tracks themselves."""
    return {
        (row["artist_id"], row["license_class"]): row["n"]
        for row in Track.objects.values("artist_id", "license_class")
        .order_by()
        .annotate(n=Count("id"))
    }


# MPEG-1 layer III, 128 kbit/s, 44.1 kHz, stereo, no CRC: 1,152 samples in
# 417 bytes (144 × 128,000 / 44,100), the Xing header 36 bytes in.
_MP3_FRAME_HEADER = bytes.fromhex("FFFB9000")
MP3_FRAME_BYTES = 417
MP3_FRAME_SECONDS = 1152 / 44100


def mp3_bytes(*, declared_frames: int, frames: int = 1) -> bytes:
    """An MP3 of ``frames`` frames (all zero audio data) whose first frame
    carries a Xing header saying the file has ``declared_frames`` frames:
    mutagen reads the length from that count, as players do."""
    xing = b"Xing" + struct.pack(">II", 0x1, declared_frames)  # flag: frames
    first = _MP3_FRAME_HEADER + bytes(32) + xing
    first += bytes(MP3_FRAME_BYTES - len(first))
    other = _MP3_FRAME_HEADER + bytes(MP3_FRAME_BYTES - 4)
    return first + other * (frames - 1)


def wav_declaring(
    *,
    data_size: int,
    data: bytes = bytes(16),
    rate: int = 8000,
    channels: int = 1,
    sample_width: int = 1,
) -> bytes:
    """A PCM WAV built by hand whose data chunk says it holds ``data_size``
    bytes while the file carries only ``data``."""
    block_align = channels * sample_width
    fmt = struct.pack(
        "<HHIIHH",
        1,  # PCM
        channels,
        rate,
        rate * block_align,  # byte rate
        block_align,
        sample_width * 8,
    )
    chunks = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    chunks += b"data" + struct.pack("<I", data_size) + data
    return b"RIFF" + struct.pack("<I", len(chunks)) + chunks
