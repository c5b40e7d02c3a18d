"""todoscale: a collaborative todo service built on Flask the way Flask is built at scale."""

from todoscale.app import create_app

__all__ = ["create_app"]
