"""The baseline task of ``bench/propagation_delivery.py``: a Celery task that
does nothing, on the same broker and workers as the deliveries. Loaded by the
bench settings only (``CELERY_IMPORTS``)."""

from celery import shared_task


@shared_task(name="bench.noop")
def noop() -> None:
    """Nothing: what one task per change costs at the least."""
