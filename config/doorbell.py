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


def ring(task, *args, countdown: float | None = None) -> bool:
    """Publish ``task(*args)`` now (to run after ``countdown`` seconds, if
    given); log and return ``False`` if the broker refuses it (the caller's
    work is committed and the sweep will find it)."""
    try:
        if countdown:
            task.apply_async(args, countdown=countdown)
        else:
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


_next_ring: dict[str, float] = {}
_trailing_at: dict[str, float] = {}


def ring_at_most_every(seconds: float, task, *args) -> bool:
    """Ring ``task(*args)`` at most once every ``seconds`` per process, and
    never leave a call unrung: a call inside the interval schedules one
    trailing ring (``countdown``) for the interval's end, shared by every call
    until then. Returns whether this call published a message.

    For doorbells whose task takes every pending row at once (receipts to
    e-mail, changes to propagate): a burst costs about one publish per
    interval, not one per write, and the last write of a burst is taken at
    most ``seconds`` later.
    """
    key = f"{getattr(task, 'name', task)}{args!r}"
    now = time.monotonic()
    due = _next_ring.get(key, float("-inf"))
    if now >= due:
        _next_ring[key] = now + seconds
        return ring(task, *args)
    if _trailing_at.get(key, float("-inf")) > now:
        return False  # the trailing ring on its way covers this call too
    _trailing_at[key] = due
    _next_ring[key] = due + seconds
    return ring(task, *args, countdown=due - now)
