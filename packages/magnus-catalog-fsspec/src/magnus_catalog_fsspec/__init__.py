"""The ``fsspec`` catalog of magnus: each run's data in an object store (S3, GCS, Azure) or any fsspec URL."""

from magnus_catalog_fsspec.version import __version__

__all__ = ["__version__"]
