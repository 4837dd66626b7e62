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


def _ogg(pages: list[tuple[list[bytes], int]]) -> bytes:
    """An Ogg stream of one logical bitstream: ``(packets, granule
    position)`` per page, CRCs computed by mutagen's ``OggPage``."""
    from mutagen.ogg import OggPage

    data = b""
    for sequence, (packets, position) in enumerate(pages):
        page = OggPage()
        page.serial, page.sequence, page.position = 0x5EF, sequence, position
        page.packets = packets
        page.first, page.last = sequence == 0, sequence == len(pages) - 1
        data += page.write()
    return data


def ogg_vorbis_bytes(*, seconds: float = 1.0, rate: int = 44100) -> bytes:
    """A minimal Ogg Vorbis file: identification and comment headers as the
    Vorbis I specification lays them out, a placeholder setup header and one
    audio page whose granule position gives the length (what mutagen reads;
    no player would decode it)."""
    identification = (
        b"\x01vorbis"
        + struct.pack("<IBIiiiB", 0, 1, rate, 0, 128_000, 0, 0xB8)
        + b"\x01"
    )
    vendor = b"refrain-tests"
    comments = (
        b"\x03vorbis" + struct.pack("<I", len(vendor)) + vendor + bytes(4) + b"\x01"
    )
    setup = b"\x05vorbis" + bytes(32)
    return _ogg(
        [
            ([identification], 0),
            ([comments, setup], 0),
            ([bytes(16)], int(seconds * rate)),
        ]
    )


def ogg_opus_bytes(*, seconds: float = 1.0) -> bytes:
    """A minimal Ogg Opus file (RFC 7845): ``OpusHead``, ``OpusTags`` and one
    audio page whose granule position (48 kHz, after the pre-skip) gives the
    length."""
    pre_skip = 312
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, pre_skip, 48000, 0, 0)
    vendor = b"refrain-tests"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + bytes(4)
    return _ogg(
        [([head], 0), ([tags], 0), ([bytes(16)], int(seconds * 48000) + pre_skip)]
    )


def _box(kind: bytes, payload: bytes = b"", *, full: bool = False) -> bytes:
    """An MPEG-4 box (``full``: with version 0 and no flags first)."""
    if full:
        payload = bytes(4) + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def m4a_bytes(*, seconds: int = 1, rate: int = 44100) -> bytes:
    """A minimal M4A (MPEG-4 audio, AAC-LC stereo): ``ftyp``, a ``moov``
    with one sound track and its sample table, and a 4-byte ``mdat``; enough
    for mutagen to read its length and codec and to write tags."""
    duration = seconds * rate
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">IIII", 0, 0, rate, duration)
        + struct.pack(">IH", 0x10000, 0x100)
        + bytes(10)
        + matrix
        + bytes(24)
        + struct.pack(">I", 2),
        full=True,
    )
    tkhd = _box(
        b"tkhd",
        struct.pack(">I", 7)  # version 0; enabled, in movie, in preview
        + struct.pack(">IIIII", 0, 0, 1, 0, duration)
        + bytes(8)
        + struct.pack(">hhhH", 0, 0, 0x100, 0)
        + matrix
        + bytes(8),
    )
    mdhd = _box(
        b"mdhd", struct.pack(">IIIIHH", 0, 0, rate, duration, 0x55C4, 0), full=True
    )
    hdlr = _box(
        b"hdlr", bytes(4) + b"soun" + bytes(12) + b"SoundHandler\x00", full=True
    )

    def descriptor(tag: int, payload: bytes) -> bytes:
        return bytes([tag, len(payload)]) + payload

    decoder = descriptor(
        0x04,
        bytes([0x40, 0x15])
        + bytes(3)
        + struct.pack(">II", 128_000, 128_000)
        + descriptor(0x05, bytes([0x12, 0x10])),  # AAC-LC, 44.1 kHz, stereo
    )
    esds = _box(
        b"esds",
        descriptor(
            0x03, struct.pack(">HB", 1, 0) + decoder + descriptor(0x06, b"\x02")
        ),
        full=True,
    )
    mp4a = _box(
        b"mp4a",
        bytes(6)
        + struct.pack(">H", 1)
        + bytes(8)
        + struct.pack(">HHHHI", 2, 16, 0, 0, rate << 16)
        + esds,
    )
    sample_table = (
        _box(b"stsd", struct.pack(">I", 1) + mp4a, full=True)
        + _box(b"stts", struct.pack(">III", 1, 1, duration), full=True)
        + _box(b"stsc", struct.pack(">IIII", 1, 1, 1, 1), full=True)
        + _box(b"stsz", struct.pack(">III", 0, 1, 4), full=True)
    )
    url = struct.pack(">I", 12) + b"url " + b"\x00\x00\x00\x01"  # self-contained
    media_info = _box(b"smhd", bytes(4), full=True) + _box(
        b"dinf", _box(b"dref", struct.pack(">I", 1) + url, full=True)
    )
    ftyp = _box(b"ftyp", b"M4A " + bytes(4) + b"M4A isomiso2")

    def moov(offset: int) -> bytes:
        stco = _box(b"stco", struct.pack(">II", 1, offset), full=True)
        minf = _box(b"minf", media_info + _box(b"stbl", sample_table + stco))
        trak = _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr + minf))
        return _box(b"moov", mvhd + trak)

    # The chunk offset points at the sample inside mdat, after its header.
    offset = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(offset) + _box(b"mdat", bytes(4))
