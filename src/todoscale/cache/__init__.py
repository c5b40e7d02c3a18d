"""Caching: an in-process layer kept honest by generation stamps that every process shares."""

from todoscale.cache.local import LocalCache, init_app, invalidate, local_cache
from todoscale.cache.stamps import SharedStamps

__all__ = ["LocalCache", "SharedStamps", "init_app", "invalidate", "local_cache"]
