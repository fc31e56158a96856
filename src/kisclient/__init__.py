"""kisclient: a client for the Korea Investment & Securities (KIS) Open API."""

from ._version import __version__

__all__ = ["__version__"]
