"""Django's cache framework on a manygil.SharedDict: one cache for every worker of the process.

    CACHES = {
        "default": {
            "BACKEND": "manygil.django.SharedCache",
            "LOCATION": "default",                       # the SharedDict's name: one cache per name
            "TIMEOUT": 300,
            "OPTIONS": {"MAX_BYTES": 64 * 1024 * 1024},  # the budget; least recently read go first
        }
    }

Under `manygil serve`, every worker interpreter that builds this cache gets the same store, so what one
request caches the next one finds, whichever worker serves it (Django's LocMemCache keeps one cache
per process, and a process server's N workers keep N caches). The whole BaseCache API works: get/set/
add/touch/delete, the *_many forms, get_or_set, has_key, incr/decr (atomic, across workers), versions
(incr_version), clear, and the async forms (BaseCache's, which run the sync ones in a thread).

Values are pickled as LocMemCache pickles them, except ints, which are stored as they are so that
incr() is one atomic step in C++. Expiry follows Django: TIMEOUT None never expires, 0 or less does
not store (and set() deletes the key). Eviction: when the budget is full, CLOCK drops entries not read
since the hand last passed (see manygil.SharedDict); Django's MAX_ENTRIES and CULL_FREQUENCY do not
apply. Every interpreter must give one LOCATION the same MAX_BYTES (settings are read by each worker
alike); a different one is a ValueError.
"""

from __future__ import annotations

import pickle
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

from ._core import SharedDict

__all__ = ["SharedCache"]

_MISSING = object()
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class SharedCache(BaseCache):
    """A Django cache backend whose store every interpreter of the process shares (see the module)."""

    pickle_protocol = pickle.HIGHEST_PROTOCOL

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        options = dict(params.get("OPTIONS") or {})
        max_bytes = options.get("MAX_BYTES", options.get("max_bytes", DEFAULT_MAX_BYTES))
        self._store = SharedDict.named(f"django-cache:{name}", max_bytes=max_bytes)

    # -- values: ints as they are (incr in one step), the rest pickled --------------------------------
    def _encode(self, value: Any) -> Any:
        return value if type(value) is int else pickle.dumps(value, self.pickle_protocol)

    @staticmethod
    def _decode(stored: Any) -> Any:
        return stored if type(stored) is int else pickle.loads(stored)

    def _ttl(self, timeout: Any) -> float | None:
        """Seconds to live for the store (None: forever); 0 means "do not store"."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        return max(float(timeout), 0.0)

    # -- BaseCache ------------------------------------------------------------------------------------
    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        ttl = self._ttl(timeout)
        if ttl == 0:
            return key not in self._store  # would have been added, and expired at once
        return self._store.add(key, self._encode(value), ttl)

    def get(self, key, default=None, version=None):
        key = self.make_and_validate_key(key, version=version)
        stored = self._store.get(key, _MISSING)
        return default if stored is _MISSING else self._decode(stored)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        ttl = self._ttl(timeout)
        if ttl == 0:
            self._store.pop(key, None)
            return
        self._store.set(key, self._encode(value), ttl)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        key = self.make_and_validate_key(key, version=version)
        ttl = self._ttl(timeout)
        if ttl == 0:
            return self._store.pop(key, _MISSING) is not _MISSING
        return self._store.touch(key, ttl)

    def delete(self, key, version=None):
        key = self.make_and_validate_key(key, version=version)
        return self._store.pop(key, _MISSING) is not _MISSING

    def get_many(self, keys, version=None):
        by_key = {self.make_and_validate_key(k, version=version): k for k in keys}
        found = self._store.get_many(by_key)
        return {by_key[k]: self._decode(v) for k, v in found.items()}

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        ttl = self._ttl(timeout)
        items = {self.make_and_validate_key(k, version=version): self._encode(v) for k, v in data.items()}
        if ttl == 0:
            for key in items:
                self._store.pop(key, None)
        else:
            self._store.update(items, ttl=ttl)
        return []

    def delete_many(self, keys, version=None):
        for key in keys:
            self.delete(key, version=version)

    def has_key(self, key, version=None):
        return self.make_and_validate_key(key, version=version) in self._store

    def incr(self, key, delta=1, version=None):
        key = self.make_and_validate_key(key, version=version)
        try:
            return self._store.incr(key, delta)
        except KeyError:
            raise ValueError(f"Key '{key}' not found") from None
        except TypeError:  # a pickled number (a float, a Decimal): read, add, write back if unchanged
            while True:
                stored = self._store.get(key, _MISSING)
                if stored is _MISSING:
                    raise ValueError(f"Key '{key}' not found") from None
                new_value = self._decode(stored) + delta
                if self._store.compare_and_set(key, stored, self._encode(new_value)):
                    return new_value

    def clear(self):
        self._store.clear()

    def close(self, **kwargs):
        pass  # nothing to release: the store outlives this object

    def stats(self) -> dict[str, int]:
        """The store's counters: hits, misses, evictions, expirations, entries, bytes, max_bytes."""
        return self._store.stats()
