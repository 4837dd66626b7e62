"""Ringing a worker after a commit, without ever failing the commit's answer.

A task enqueued this way is a doorbell: the work it stands for is already in
the database (a receipt not yet e-mailed, a policy version not yet applied, a
bulk job not yet finished), and a ``celery beat`` sweep finds that work again
when the message is lost. So a broker that cannot take the message is logged
and left to the sweep; the request that committed answers as the commit did.
"""

import logging

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
