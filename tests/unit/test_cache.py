"""shared/cache.py: bounded LRU eviction, hit reporting, and one computation per key under concurrency."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.cache import BoundedCache


def test_hit_and_miss_are_reported_and_the_value_is_reused():
    cache: BoundedCache[list] = BoundedCache(2)
    first, hit = cache.get_or_create("a", lambda: [1])
    again, hit2 = cache.get_or_create("a", lambda: [2])
    assert (hit, hit2) == (False, True)
    assert again is first


def test_least_recently_used_entry_is_evicted():
    cache: BoundedCache[int] = BoundedCache(2)
    cache.get_or_create("a", lambda: 1)
    cache.get_or_create("b", lambda: 2)
    cache.get_or_create("a", lambda: 0)  # touch a: b is now the oldest
    cache.get_or_create("c", lambda: 3)
    assert "a" in cache and "c" in cache and "b" not in cache
    assert len(cache) == 2


def test_concurrent_requests_for_one_key_compute_once():
    cache: BoundedCache[int] = BoundedCache(4)
    calls = []
    lock = threading.Lock()

    def slow() -> int:
        with lock:
            calls.append(1)
        time.sleep(0.2)
        return 42

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: cache.get_or_create("k", slow), range(8)))
    assert len(calls) == 1
    assert [v for v, _ in results] == [42] * 8
    assert sum(not hit for _, hit in results) == 1


def test_a_failed_computation_is_not_cached_and_can_be_retried():
    cache: BoundedCache[int] = BoundedCache(2)

    def boom() -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get_or_create("k", boom)
    assert "k" not in cache
    assert cache._key_locks == {}, "a failed key leaves no lock behind (refused inputs would pile up)"
    assert cache.get_or_create("k", lambda: 5) == (5, False)


def test_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        BoundedCache(0)
