"""Caching: an in-process layer kept honest by generation stamps that every process shares,
bumped by the session after each commit for the rows it changed."""

from todoscale.cache import replay
from todoscale.cache.local import LocalCache, invalidate, local_cache
from todoscale.cache.stamps import SharedStamps
from todoscale.cache.tiers import AS_IS, Codec, memoize
from todoscale.cache.writes import init_app, track, wrote

__all__ = [
    "AS_IS",
    "Codec",
    "LocalCache",
    "SharedStamps",
    "init_app",
    "invalidate",
    "local_cache",
    "memoize",
    "replay",
    "track",
    "wrote",
]
