"""Caching: an in-process layer kept honest by generation stamps that every process shares."""

from todoscale.cache import replay
from todoscale.cache.local import LocalCache, init_app, invalidate, local_cache
from todoscale.cache.stamps import SharedStamps
from todoscale.cache.tiers import AS_IS, Codec, cached, remember

__all__ = [
    "AS_IS",
    "Codec",
    "LocalCache",
    "SharedStamps",
    "cached",
    "init_app",
    "invalidate",
    "local_cache",
    "remember",
    "replay",
]
