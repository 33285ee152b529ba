"""The ``db`` run log store of magnus: run logs in PostgreSQL or SQLite."""

from magnus_runlog_db.version import __version__

__all__ = ["__version__"]
