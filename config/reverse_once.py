"""``reverse_once``: a URL the busiest answers carry, reversed once per
script prefix and URL configuration (``reverse`` costs ~50 µs a call, a
switch's answer or a list page needs the same few URLs every time)."""

import functools

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix, reverse


def reverse_once(name: str, *args: str) -> str:
    """``reverse(name, args=args)``, cached: for URLs whose arguments are
    constants (a placeholder that the caller cuts off, say), never per
    object."""
    return _reversed(get_script_prefix(), name, args)


@functools.lru_cache(maxsize=32)
def _reversed(prefix: str, name: str, args: tuple[str, ...]) -> str:
    return reverse(name, args=args)


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs) -> None:
    if setting == "ROOT_URLCONF":  # as Django's own URL caches
        _reversed.cache_clear()
