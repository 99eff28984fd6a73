"""Lookups remembered for a while, as Dovecot's ``auth_cache``: found accounts for
``cache_ttl`` seconds, unknown names for ``negative_cache_ttl`` seconds (0 turns either off).

The cache is bounded (the oldest entries go first), so a client trying endless made-up names
cannot grow it without limit. A change is announced by ``invalidate(name)`` or ``flush()``;
both bump ``generation``, and ``put`` drops a result whose query started before the latest
change (it may be the old value, read just before the change landed).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from seikyou_auth.accounts.model import Account

__all__ = ["CachedLookup", "LookupCache"]

DEFAULT_MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class CachedLookup:
    account: Account | None  # None: the name is known not to exist


class LookupCache:
    def __init__(
        self,
        positive_ttl: float,
        negative_ttl: float,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.positive_ttl = positive_ttl
        self.negative_ttl = negative_ttl
        self.max_entries = max_entries
        self.generation = 0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, CachedLookup]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.positive_ttl > 0 or self.negative_ttl > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, name: str) -> CachedLookup | None:
        """The remembered lookup of ``name``, or None when there is none still fresh."""
        entry = self._entries.get(name)
        if entry is None:
            return None
        expires, lookup = entry
        if self._clock() >= expires:
            del self._entries[name]
            return None
        return lookup

    def put(self, name: str, account: Account | None, generation: int) -> None:
        """Remember a lookup that started when ``generation`` was current."""
        if generation != self.generation:
            return
        ttl = self.positive_ttl if account is not None else self.negative_ttl
        if ttl <= 0:
            return
        self._entries.pop(name, None)
        self._entries[name] = (self._clock() + ttl, CachedLookup(account))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, name: str) -> None:
        self.generation += 1
        self._entries.pop(name, None)

    def flush(self) -> None:
        self.generation += 1
        self._entries.clear()
