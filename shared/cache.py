"""One bounded, thread-safe cache for everything a page keeps between requests (models, text embeddings).

Gradio runs handlers in worker threads, so two users asking for the same thing at once must not both
compute it: the first computes under a per-key lock while the others wait, then everyone reads the
same entry. The least recently used entry goes when the cache is full.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """An LRU map of at most ``size`` entries. ``get_or_create(key, make)`` returns ``(value, hit)``."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"cache size must be at least 1, got {size}")
        self.size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def get_or_create(self, key: Hashable, make: Callable[[], V]) -> tuple[V, bool]:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key], True
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one thread computes; the others wait for it instead of computing twice
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key], True
            try:
                value = make()  # outside the cache-wide lock: other keys stay served meanwhile
            except BaseException:
                with self._lock:  # nothing cached (e.g. a refused input): drop the key's lock too
                    self._key_locks.pop(key, None)
                raise
            with self._lock:
                self._entries[key] = value
                while len(self._entries) > self.size:
                    self._entries.popitem(last=False)
                self._key_locks.pop(key, None)
            return value, False

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
