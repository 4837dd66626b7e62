"""Consent's tables, by concern: the core (decisions, policy, eligibility,
ledger, receipts, jobs), checks (nightly results, ledger anchors),
propagation (consumers, their sync state, the change outbox, delivery
attempts, the training-data registry) and the partner API (partners, keys,
look-ups, acknowledgements, the change feed, exports), the audit's
precomputed figures and the artists' e-mail preferences.

Tables and constraints only; every write is in ``consent.services`` or
``consent.propagation``.
"""

from consent.models.audit import *  # noqa: F403
from consent.models.audit import __all__ as _audit
from consent.models.checks import *  # noqa: F403
from consent.models.checks import __all__ as _checks
from consent.models.core import *  # noqa: F403
from consent.models.core import __all__ as _core
from consent.models.partners import *  # noqa: F403
from consent.models.partners import __all__ as _partners
from consent.models.preferences import *  # noqa: F403
from consent.models.preferences import __all__ as _preferences
from consent.models.propagation import *  # noqa: F403
from consent.models.propagation import __all__ as _propagation

__all__ = [*_core, *_checks, *_propagation, *_partners, *_audit, *_preferences]
