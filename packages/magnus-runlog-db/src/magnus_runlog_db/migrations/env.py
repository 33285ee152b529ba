"""Alembic environment of the store's schema, run programmatically by :mod:`magnus_runlog_db.migrate`.

No ``alembic.ini`` is needed: the caller passes an open connection (inside its transaction, holding
the schema lock) and the table prefix in ``config.attributes``. Each ``db_name`` prefix has its own
version table, ``<prefix>_schema_version``.
"""

from alembic import context

from magnus_runlog_db.schema import version_table

connection = context.config.attributes["connection"]
prefix = context.config.attributes["prefix"]
context.configure(connection=connection, version_table=version_table(prefix))
with context.begin_transaction():
    context.run_migrations(prefix=prefix)
