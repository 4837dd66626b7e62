"""Propagation: every consent change reaches every consumer, in order, across
crashes and outages (ARCHITECTURE.md, "The write path" 4-7, "Consumers").

The public names are re-exported here; see each module for its guarantees.
"""

from consent.propagation.consumers import (
    ConsumerError,
    WithSecret,
    consumer_create,
    consumer_disable,
    consumer_move,
    consumer_pause,
    consumer_replay,
    consumer_resume,
    consumer_rotate_secret,
    consumer_send_test,
    uses_parse,
)
from consent.propagation.delivery import (
    claim_deliver,
    consumer_deliver,
    retry_delay,
    sync_claim,
)
from consent.propagation.outbox import (
    propagation_backlog,
    propagation_fan_out,
    propagation_record,
    propagation_ring,
)
from consent.propagation.sweeps import (
    consumer_backfill_step,
    consumers_reconcile,
    delivery_attempts_purge,
    propagation_run,
    propagation_sweep,
    ring_due_consumers,
)

__all__ = [
    "ConsumerError",
    "WithSecret",
    "claim_deliver",
    "consumer_backfill_step",
    "consumer_create",
    "consumer_deliver",
    "consumer_disable",
    "consumer_move",
    "consumer_pause",
    "consumer_replay",
    "consumer_resume",
    "consumer_rotate_secret",
    "consumer_send_test",
    "consumers_reconcile",
    "delivery_attempts_purge",
    "propagation_backlog",
    "propagation_fan_out",
    "propagation_record",
    "propagation_ring",
    "propagation_run",
    "propagation_sweep",
    "retry_delay",
    "ring_due_consumers",
    "sync_claim",
    "uses_parse",
]
