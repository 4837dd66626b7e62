"""``{% policy_promise_words %}``: the policy's promise about silence, in
words derived from the rules in force (``consent.policy.policy_promise``)."""

from django import template
from django.core.cache import cache

from consent.policy import (
    PROMISE_CACHE_KEY,
    PROMISE_CACHE_SECONDS,
    Policy,
    policy_current,
    policy_promise,
)

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
    words = cache.get(PROMISE_CACHE_KEY)
    if words is None:
        words = policy_promise(policy_current())
        cache.set(PROMISE_CACHE_KEY, words, PROMISE_CACHE_SECONDS)
    return words
