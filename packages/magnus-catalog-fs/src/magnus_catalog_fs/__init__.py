"""The ``file-system`` catalog of magnus."""

from magnus_catalog_fs.version import __version__

__all__ = ["__version__"]
