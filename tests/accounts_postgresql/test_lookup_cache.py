"""The lookup cache: TTLs as Dovecot's auth_cache, invalidation, and its bound."""

from __future__ import annotations

from seikyou_auth.accounts.cache import LookupCache
from seikyou_auth.accounts.model import Account


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


ACCOUNT = Account("ma10001a", "{PLAIN}secret")


def test_found_and_unknown_names_expire_after_their_own_ttl() -> None:
    clock = Clock()
    cache = LookupCache(10.0, 2.0, clock=clock)
    cache.put("ma10001a", ACCOUNT, cache.generation)
    cache.put("nobody", None, cache.generation)
    cached = cache.get("ma10001a")
    assert cached is not None and cached.account == ACCOUNT
    cached_unknown = cache.get("nobody")
    assert cached_unknown is not None and cached_unknown.account is None
    clock.now += 2.0
    assert cache.get("nobody") is None
    assert cache.get("ma10001a") is not None
    clock.now += 8.0
    assert cache.get("ma10001a") is None
    assert len(cache) == 0


def test_zero_ttl_caches_nothing_of_that_kind() -> None:
    cache = LookupCache(0.0, 5.0)
    cache.put("ma10001a", ACCOUNT, cache.generation)
    assert cache.get("ma10001a") is None
    assert LookupCache(0.0, 0.0).enabled is False


def test_a_result_read_before_a_change_is_not_kept() -> None:
    cache = LookupCache(60.0, 60.0)
    started = cache.generation
    cache.invalidate("someone-else")
    cache.put("ma10001a", ACCOUNT, started)
    assert cache.get("ma10001a") is None


def test_invalidate_and_flush_drop_entries() -> None:
    cache = LookupCache(60.0, 60.0)
    for name in ("a", "b", "c"):
        cache.put(name, None, cache.generation)
    cache.invalidate("b")
    assert cache.get("b") is None and cache.get("a") is not None
    cache.flush()
    assert len(cache) == 0


def test_the_oldest_entries_go_first_beyond_the_bound() -> None:
    cache = LookupCache(60.0, 60.0, max_entries=3)
    for name in ("a", "b", "c", "d"):
        cache.put(name, None, cache.generation)
    assert cache.get("a") is None
    assert [cache.get(name) is not None for name in ("b", "c", "d")] == [True, True, True]
