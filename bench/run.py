"""`make bench`: run every benchmark script in turn and print its figures."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "catalog_import.py",
    "catalog_list.py",
    "consent_toggle.py",
    "consent_bulk.py",
    "consent_policy.py",
    "ledger_anchor.py",
    "propagation_delivery.py",
    "propagation_lag.py",
    "propagation_drain.py",
    "partner_check.py",
    "partner_export.py",
    "partner_trainability.py",
    "signals_public.py",
    "signals_drift.py",
    "audit_pages.py",
]

if __name__ == "__main__":
    wanted = sys.argv[1:] or SCRIPTS
    failed = 0
    for script in wanted:
        print(f"\n=== {script} ===", flush=True)
        failed |= subprocess.call([sys.executable, str(HERE / script)])
    sys.exit(failed)
