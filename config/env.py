"""The one place where configuration is read from the environment.

Every setting module imports ``env`` from here; nothing else reads ``os.environ``.
The embedded default keeps all local state under ``var/`` (git-ignored).
"""

import base64
import secrets
from pathlib import Path

import environ
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

VAR_DIR = Path(env.str("REFRAIN_VAR_DIR", default=str(BASE_DIR / "var")))


def ensure_var_dirs(*names: str) -> None:
    """Create ``var/`` and the given sub-folders (idempotent)."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        (VAR_DIR / name).mkdir(parents=True, exist_ok=True)


def _generated(name: str, make) -> str:
    """The value kept in ``var/<name>``, created by ``make()`` on first run."""
    ensure_var_dirs()
    path = VAR_DIR / name
    if not path.exists():
        # O_EXCL: two processes starting at once must agree on one value.
        try:
            with path.open("x") as handle:
                handle.write(make())
            path.chmod(0o600)
        except FileExistsError:
            pass
    return path.read_text().strip()


def generated_signing_key() -> str:
    """Return the Ed25519 signing key kept in ``var/signing_key`` (its seed,
    base64url), creating it on first run. Only the embedded settings use this;
    production requires ``REFRAIN_SIGNING_KEY``."""

    def make() -> str:
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return base64.urlsafe_b64encode(seed).rstrip(b"=").decode("ascii")

    return _generated("signing_key", make)


def generated_secret_key() -> str:
    """Return the secret key kept in ``var/secret_key``, creating it on first run.

    Only the embedded (local/test) settings use this; production requires
    ``DJANGO_SECRET_KEY`` and has no default.
    """
    return _generated("secret_key", lambda: secrets.token_urlsafe(64))
