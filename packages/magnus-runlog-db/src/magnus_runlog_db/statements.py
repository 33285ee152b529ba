"""The statements a running step issues, built once and compiled once into the driver's own SQL.

A map item or a step of a chain costs a handful of small statements (write a step's row, read
the parameters, set a branch's status). Building each as a fresh SQLAlchemy construct and
compiling it (or looking it up in the compiled cache, which starts by walking the construct)
cost more than the round trip to the server. So each is built here once per store, compiled
once for the engine's dialect, and run with ``Connection.exec_driver_sql``: the driver gets the
SQL text and the parameters as they are. The text is SQLAlchemy's own rendering of the tables
of :mod:`magnus_runlog_db.schema` (quoting, ``ON CONFLICT`` and ``RETURNING`` of the dialect),
so nothing here is hand-written SQL.

Parameters are plain strings (no type needs SQLAlchemy's conversion on the way in), and results
are the driver's rows.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional, Sequence, Tuple, Union

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from magnus_runlog_db.dialects import insert_for, upsert
from magnus_runlog_db.schema import BRANCH, STEP, Tables

Parameters = Mapping[str, Any]
Result = CursorResult[Tuple[Any, ...]]

# The key of a part, and what replacing a part changes (its ``id`` and ``parent`` are kept).
PART_KEY = ["run_id", "kind", "internal_name"]
PART_UPDATE = ["status", "message", "body"]
_PART_COLUMNS = ["run_id", "kind", "internal_name", "parent", "status", "message", "body"]


class DriverStatement:
    """One statement compiled for one dialect, executed as the driver's SQL."""

    def __init__(self, statement: sa.ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = str(compiled)
        # Values fixed in the construct (a part's kind); the caller gives the others.
        self._fixed = {name: value for name, value in compiled.params.items() if value is not None}
        # qmark drivers (sqlite3) take a tuple in the compiled order; named ones take the mapping.
        self._order: Optional[Tuple[str, ...]] = tuple(compiled.positiontup or ()) if compiled.positional else None

    def execute(self, conn: Connection, values: Union[Parameters, Sequence[Parameters]]) -> Result:
        """Run with one set of ``values``, or with each of a list of them (the driver's executemany)."""
        if isinstance(values, Mapping):
            return conn.exec_driver_sql(self.sql, self._bound(values))
        return conn.exec_driver_sql(self.sql, [self._bound(one) for one in values])

    def all(self, conn: Connection, values: Parameters) -> List[Tuple[Any, ...]]:
        """The rows found, as tuples."""
        return [tuple(row) for row in self.execute(conn, values)]

    def _bound(self, values: Parameters) -> Any:
        every = {**self._fixed, **values} if self._fixed else values
        if self._order is None:
            return dict(every)
        return tuple(every[name] for name in self._order)


class Statements:
    """The hot statements of one store (one table prefix), for the dialect of its engine."""

    def __init__(self, tables: Tables, dialect: Dialect) -> None:
        parts, parameters, runs = tables.parts, tables.parameters, tables.runs
        param = sa.bindparam
        is_part = sa.and_(
            parts.c.run_id == param("run_id"), parts.c.kind == param("kind"), parts.c.internal_name == param("name")
        )

        def upsert_part(update: List[str]) -> DriverStatement:
            insert = insert_for(dialect, parts).inline().values({name: param(name) for name in _PART_COLUMNS})
            return DriverStatement(upsert(insert, PART_KEY, update), dialect)

        self.replace_part = upsert_part(PART_UPDATE)
        self.add_part_if_new = upsert_part([])
        self.part_exists = DriverStatement(sa.select(parts.c.id).where(is_part), dialect)
        self.part_status = DriverStatement(sa.select(parts.c.status).where(is_part), dialect)
        self.run_exists = DriverStatement(sa.select(runs.c.run_id).where(runs.c.run_id == param("run_id")), dialect)
        self.step_status = DriverStatement(
            parts.update()
            .where(is_part)
            .values(status=param("status"), message=param("message"))
            .returning(parts.c.body, parts.c.status, parts.c.message),
            dialect,
        )
        self.branch_status = DriverStatement(parts.update().where(is_part).values(status=param("status")), dialect)
        self.parameters = DriverStatement(
            sa.select(runs.c.run_id, parameters.c.name, parameters.c.value)
            .select_from(runs.outerjoin(parameters, parameters.c.run_id == runs.c.run_id))
            .where(runs.c.run_id == param("run_id"))
            .order_by(parameters.c.name),
            dialect,
        )
        self.branch_statuses = DriverStatement(
            sa.select(parts.c.kind, parts.c.internal_name, parts.c.status)
            .where(parts.c.run_id == param("run_id"))
            .where(
                sa.or_(
                    sa.and_(parts.c.kind == STEP, parts.c.internal_name == param("name")),
                    sa.and_(parts.c.kind == BRANCH, parts.c.parent == param("name")),
                )
            )
            .order_by(parts.c.id),
            dialect,
        )
