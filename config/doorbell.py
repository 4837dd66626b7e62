"""Ringing a worker after a commit, without ever failing the commit's answer.

A task enqueued this way is a doorbell: the work it stands for is already in
the database (a receipt not yet e-mailed, a policy version not yet applied, a
bulk job not yet finished), and a ``celery beat`` sweep finds that work again
when the message is lost. So a broker that cannot take the message is logged
and left to the sweep; the request that committed answers as the commit did.
"""

import logging
import time

from django.db import transaction

logger = logging.getLogger("refrain.doorbell")


def ring(task, *args) -> bool:
    """Publish ``task(*args)`` now; log and return ``False`` if the broker
    refuses it (the caller's work is committed and the sweep will find it)."""
    try:
        task.delay(*args)
    except Exception:  # noqa: BLE001 - any broker failure is the sweep's job
        logger.warning(
            "could not enqueue %s%r: left to the beat sweep",
            getattr(task, "name", task),
            args,
            exc_info=True,
        )
        return False
    return True


def ring_after_commit(task, *args) -> None:
    """Ring ``task(*args)`` once the current transaction commits."""
    transaction.on_commit(lambda: ring(task, *args))


_last_rung: dict[str, float] = {}


def ring_at_most_every(seconds: float, task, *args) -> bool:
    """Ring ``task(*args)`` unless this process rang it less than ``seconds``
    ago; returns whether it rang.

    For doorbells whose task takes every pending row at once (receipts to
    e-mail, changes to propagate): a burst costs one publish per interval,
    not one per write. A write skipped here is seen by the task already on
    its way if that task looks again for ``seconds`` after it runs dry (the
    propagation doorbell does, for its latency), else by the beat sweep.
    """
    key = f"{getattr(task, 'name', task)}{args!r}"
    now = time.monotonic()
    if now - _last_rung.get(key, float("-inf")) < seconds:
        return False
    _last_rung[key] = now
    return ring(task, *args)
