"""The one place where configuration is read from the environment.

Every setting module imports ``env`` from here; nothing else reads ``os.environ``.
The embedded default keeps all local state under ``var/`` (git-ignored).
"""

import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

VAR_DIR = Path(env.str("REFRAIN_VAR_DIR", default=str(BASE_DIR / "var")))


def ensure_var_dirs(*names: str) -> None:
    """Create ``var/`` and the given sub-folders (idempotent)."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        (VAR_DIR / name).mkdir(parents=True, exist_ok=True)


def generated_secret_key() -> str:
    """Return the secret key kept in ``var/secret_key``, creating it on first run.

    Only the embedded (local/test) settings use this; production requires
    ``DJANGO_SECRET_KEY`` and has no default.
    """
    ensure_var_dirs()
    path = VAR_DIR / "secret_key"
    if not path.exists():
        key = secrets.token_urlsafe(64)
        # O_EXCL: two processes starting at once must agree on one key.
        try:
            with path.open("x") as handle:
                handle.write(key)
            path.chmod(0o600)
        except FileExistsError:
            pass
    return path.read_text().strip()
