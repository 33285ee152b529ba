"""The ``chunked-fs`` run log store of magnus."""

from magnus_runlog_chunked.version import __version__

__all__ = ["__version__"]
