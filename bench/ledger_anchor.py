"""The daily ledger anchor over 1,000,000 tracks (issue 10).

Times the anchor job (``ledger_anchor_create``: the brief SHARE lock, the
streaming Merkle root over every chain head, the signature, the row), its
recomputation by ``verify_ledger --anchors`` for that anchor, and the
set-based head check of ``verify_ledger`` (every track's version against its
chain's newest row), with this process's peak resident memory.
Goal: the anchor in under a minute, memory flat (not growing with tracks).
"""

import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.catalog_list import ensure_catalogue  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ensure_catalogue()
    common.setup_django()
    from catalog.models import Track
    from consent.ledger import VerifyReport, verify_heads
    from consent.models import LedgerEntry
    from consent.services import ledger_anchor_create
    from consent.services.anchors import anchor_problems
    from consent.signing import public_jwk

    tracks = Track.objects.count()
    rows = LedgerEntry.objects.count()
    print(f"{tracks:,} tracks, {rows:,} ledger rows", flush=True)
    before = peak_mb()

    started = time.monotonic()
    anchor = ledger_anchor_create()
    anchor_s = time.monotonic() - started
    after_anchor = peak_mb()

    started = time.monotonic()
    problems = anchor_problems(anchor, public_jwk())
    recompute_s = time.monotonic() - started

    started = time.monotonic()
    report = verify_heads(report=VerifyReport())
    heads_s = time.monotonic() - started

    print(
        common.table(
            [
                ["step", "seconds", "peak RSS MB"],
                ["anchor (lock, heads, root, sign, save)", f"{anchor_s:.1f}",
                 f"{after_anchor:.0f}"],
                ["recompute the anchor (--anchors)", f"{recompute_s:.1f}",
                 f"{peak_mb():.0f}"],
                ["head check (every track's version)", f"{heads_s:.1f}",
                 f"{peak_mb():.0f}"],
            ]
        )
    )  # fmt: skip
    print(
        f"\nanchor {anchor.pk}: {anchor.track_count:,} chains, {anchor.row_count:,} "
        f"rows, root {anchor.root[:16]}…; recomputed: "
        f"{problems or 'same root'}; head check: "
        f"{report.heads_checked:,} tracks, {len(report.breaks)} breaks"
    )
    ok = anchor_s < 60 and after_anchor - before < 100 and not problems
    print(
        f"goal (anchor under a minute, memory flat, recomputes equal): "
        f"{'MET' if ok else 'NOT MET'} (RSS before {before:.0f} MB)"
    )


if __name__ == "__main__":
    main()
