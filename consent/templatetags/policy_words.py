"""Sentences derived from the rules in force, for any page:

- ``{% policy_promise_words %}``: the policy's promise about silence
  (``consent.policy.policy_promise``);
- ``{% policy_parity_words %}``: whether independent and label-licensed music
  are under the same rule for every use (``consent.audit.parity``, without
  figures).
"""

from django import template
from django.core.cache import cache

from consent.audit.tables import parity
from consent.policy import (
    POLICY_WORDS_CACHE_KEY,
    POLICY_WORDS_CACHE_SECONDS,
    Policy,
    policy_current,
    policy_promise,
)
from consent.uses import USE_ORDER

register = template.Library()


@register.simple_tag(takes_context=True)
def policy_promise_words(context) -> str:
    """The sentence a view gave (``policy_promise``), or for the policy the
    page was rendered with (a view's ``policy``), else the current one:
    cached (every page's footer says it), dropped when a version is
    published."""
    if context.get("policy_promise"):  # a view that has it already
        return context["policy_promise"]
    policy = context.get("policy")
    if isinstance(policy, Policy):
        return policy_promise(policy)
    return _current_words()["promise"]


@register.simple_tag
def policy_parity_words() -> str:
    """One sentence: the same rule for both classes for every use, or for how
    many uses they differ (the transparency page says how)."""
    return _current_words()["parity"]


def parity_words(policy: Policy) -> str:
    found = parity(policy, {})
    if found.same:
        return (
            "Independent and label-licensed music are held to the same rule "
            "for every use."
        )
    count = len(found.differences)
    return (
        "Independent and label-licensed music are held to different rules for "
        f"{count} of {len(USE_ORDER)} uses."
    )


def _current_words() -> dict[str, str]:
    words = cache.get(POLICY_WORDS_CACHE_KEY)
    if words is None:
        policy = policy_current()
        words = {"promise": policy_promise(policy), "parity": parity_words(policy)}
        cache.set(POLICY_WORDS_CACHE_KEY, words, POLICY_WORDS_CACHE_SECONDS)
    return words
