"""Every task the app enqueues goes through ``config.doorbell``, which logs a
broker that refuses instead of failing the request that committed."""

import re
import time
import uuid
from pathlib import Path

from django.conf import settings

from config.doorbell import ring_at_most_every

APPS = ("accounts", "catalog", "consent", "config")
PUBLISH = re.compile(r"\.(delay|apply_async|send_task)\(")


def test_only_the_doorbell_publishes_tasks():
    base = Path(settings.BASE_DIR)
    publishers = sorted(
        str(path.relative_to(base))
        for app in APPS
        for path in (base / app).rglob("*.py")
        if "migrations" not in path.parts and PUBLISH.search(path.read_text())
    )

    assert publishers == ["config/doorbell.py"]


class _Task:
    """Records what the doorbell publishes (each test its own name: the
    throttle's state is per task name, per process)."""

    def __init__(self, name: str):
        self.name = name
        self.published: list[float | None] = []

    def delay(self, *args):
        self.published.append(None)

    def apply_async(self, args, countdown=None):
        self.published.append(countdown)


def test_a_burst_rings_once_at_once_and_once_at_the_end_of_the_interval():
    # given a doorbell throttled to once per 0.5 s
    task = _Task(f"burst-{uuid.uuid4()}")

    # when five commits ring it in quick succession
    rang = [ring_at_most_every(0.5, task) for _ in range(5)]

    # then the first published at once, the second scheduled one trailing
    # ring for the interval's end (covering the rest), the others nothing
    assert rang == [True, True, False, False, False]
    assert task.published[0] is None
    assert 0.4 < task.published[1] <= 0.5


def test_a_ring_after_the_interval_publishes_at_once_again():
    # given a doorbell throttled to once per 0.05 s, rung and rung again
    task = _Task(f"later-{uuid.uuid4()}")
    ring_at_most_every(0.05, task)
    ring_at_most_every(0.05, task)  # trailing, due at 0.05 s

    # when the next commit comes after the trailing ring's interval too
    time.sleep(0.12)
    assert ring_at_most_every(0.05, task)

    # then it published at once
    assert task.published[0] is None
    assert task.published[1] is not None
    assert task.published[2] is None


def test_a_ring_inside_the_trailing_interval_schedules_the_next_one():
    # given a doorbell whose trailing ring (due at 0.1 s) has just passed
    task = _Task(f"chain-{uuid.uuid4()}")
    ring_at_most_every(0.1, task)
    ring_at_most_every(0.1, task)
    time.sleep(0.12)

    # when a commit rings inside the interval that trailing ring opened
    assert ring_at_most_every(0.1, task)

    # then it is not lost: another trailing ring is scheduled
    assert task.published[2] is not None
    assert 0 < task.published[2] <= 0.1
