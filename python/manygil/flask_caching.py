"""Flask-Caching on a manygil.SharedDict: one cache for every worker of the process.

    from flask_caching import Cache

    cache = Cache(app, config={
        "CACHE_TYPE": "manygil.flask_caching.SharedCache",
        "CACHE_DEFAULT_TIMEOUT": 300,
        "CACHE_OPTIONS": {"name": "default", "max_bytes": 64 * 1024 * 1024},
    })

Under `manygil serve`, every worker interpreter that builds this cache gets the same store (one per
`name`), so `@cache.cached()` views are computed once for all workers, where SimpleCache keeps one
cache per process. The API is Flask-Caching's (cachelib's): get/set/add/delete, get_many/get_dict/
set_many/delete_many, has, clear, inc/dec (atomic across workers; an absent key starts at 0). As
cachelib's backends do, a timeout of 0 means "never expires"; None is the default timeout. Values are
pickled, except ints (stored as they are, so inc() is one atomic step). Eviction under max_bytes:
CLOCK, as manygil.SharedDict says; every interpreter must give one name the same max_bytes.
"""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Any

from flask_caching.backends.base import BaseCache

from ._core import SharedDict

__all__ = ["SharedCache"]

_MISSING = object()
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class SharedCache(BaseCache):
    """A Flask-Caching backend whose store every interpreter of the process shares (see the module)."""

    def __init__(self, default_timeout: int = 300, name: str = "default", max_bytes: int = DEFAULT_MAX_BYTES,
                 key_prefix: str = "", ignore_delete_many_errors: bool = False) -> None:
        super().__init__(default_timeout=default_timeout, ignore_delete_many_errors=ignore_delete_many_errors)
        self.key_prefix = key_prefix
        self._store = SharedDict.named(f"flask-cache:{name}", max_bytes=max_bytes)

    @classmethod
    def factory(cls, app, config, args, kwargs):
        kwargs.setdefault("key_prefix", config.get("CACHE_KEY_PREFIX") or "")
        return cls(*args, **kwargs)

    def _key(self, key: str) -> str:
        return self.key_prefix + key

    def _ttl(self, timeout: int | dt.timedelta | None) -> float | None:
        seconds = self._normalize_timeout(timeout)
        return None if seconds <= 0 else float(seconds)  # cachelib: 0 never expires

    @staticmethod
    def _encode(value: Any) -> Any:
        return value if type(value) is int else pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def _decode(stored: Any) -> Any:
        return stored if type(stored) is int else pickle.loads(stored)

    def get(self, key: str) -> Any:
        stored = self._store.get(self._key(key), _MISSING)
        return None if stored is _MISSING else self._decode(stored)

    def set(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        self._store.set(self._key(key), self._encode(value), self._ttl(timeout))
        return True

    def add(self, key: str, value: Any, timeout: int | dt.timedelta | None = None) -> bool:
        return self._store.add(self._key(key), self._encode(value), self._ttl(timeout))

    def delete(self, key: str) -> bool:
        return self._store.pop(self._key(key), _MISSING) is not _MISSING

    def get_many(self, *keys: str) -> list[Any]:
        found = self._store.get_many([self._key(k) for k in keys])
        return [self._decode(found[self._key(k)]) if self._key(k) in found else None for k in keys]

    def set_many(self, mapping: dict[str, Any], timeout: int | dt.timedelta | None = None) -> list[Any]:
        self._store.update({self._key(k): self._encode(v) for k, v in mapping.items()}, ttl=self._ttl(timeout))
        return list(mapping)

    def has(self, key: str) -> bool:
        return self._key(key) in self._store

    def clear(self) -> bool:
        if self.key_prefix:  # only this cache's keys
            for key in self._store.keys():
                if isinstance(key, str) and key.startswith(self.key_prefix):
                    self._store.pop(key, None)
        else:
            self._store.clear()
        return True

    def inc(self, key: str, delta: int = 1) -> int | None:
        return self._store.incr(self._key(key), delta, initial=0)

    def dec(self, key: str, delta: int = 1) -> int | None:
        return self._store.incr(self._key(key), -delta, initial=0)

    def stats(self) -> dict[str, int]:
        """The store's counters: hits, misses, evictions, expirations, entries, bytes, max_bytes."""
        return self._store.stats()
