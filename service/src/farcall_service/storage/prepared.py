"""The hot path's statements, run on the driver's own connection.

SQLAlchemy spends about 35 µs setting up each execution, against 4 µs for SQLite to
run one of the hot path's statements: with seven of them per task round trip, that
was a tenth of the service's time. A ``Prepared`` compiles each statement once with
SQLAlchemy, for the engine's dialect (so the SQL is the same as through SQLAlchemy),
applies the same parameter and result conversions, and runs it on the connection's
driver connection, inside the transaction SQLAlchemy began. A statement with an
``IN`` list is compiled once per length of the list it is given.

On PostgreSQL (psycopg) a transaction may also be *pipelined* (:meth:`pipelined`):
statements without rows are sent without waiting for their answers, so a
transaction costs a round trip to the server per query whose rows it reads, plus its
commit, instead of one per statement. Under load each round trip waits for a core,
so the transaction's time follows their count. The driver's errors come out as
SQLAlchemy's (a lost connection is invalidated, as SQLAlchemy does).
"""

from __future__ import annotations

import contextlib
import re
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.dml import UpdateBase

#: A placeholder of the ``pyformat`` parameter style (psycopg's).
_NAMED = re.compile(r"%\((\w+)\)s")

Params = Mapping[str, Any]


@dataclass(frozen=True, eq=False)  # one per statement: compared by identity
class _Plan:
    sql: str
    names: tuple[str, ...]
    defaults: tuple[Any, ...]  # values the statement carries itself, as LIMIT 1
    bind: tuple[Callable[[Any], Any] | None, ...]
    row: Any  # a namedtuple class, or None for statements without rows
    types: tuple[Any, ...]  # the columns' types, as the dialect has them
    named: bool  # the driver takes a mapping (pyformat), else a sequence

    def arguments(self, params: Params) -> tuple[Any, ...] | dict[str, Any]:
        values = tuple(
            value if convert is None else convert(value)
            for value, convert in zip(
                (params.get(n, d) for n, d in zip(self.names, self.defaults, strict=True)),
                self.bind, strict=True)
        )
        return dict(zip(self.names, values, strict=True)) if self.named else values


class Prepared:
    """Runs statements directly on the driver's connection (SQLite's, psycopg's), or
    through SQLAlchemy where not ``direct``."""

    def __init__(self, dialect: sa.Dialect, direct: bool) -> None:
        self._dialect = dialect
        self._direct = direct
        self._pipelines = dialect.name == "postgresql" and dialect.driver == "psycopg"
        self._plans: dict[tuple[Any, ...], _Plan | None] = {}
        self._in_lists: dict[Any, frozenset[str]] = {}  # a statement's IN-list parameters
        self._results: dict[_Plan, tuple[Callable[[Any], Any] | None, ...]] = {}

    def first(self, conn: sa.Connection, statement: Any, params: Params) -> Any:
        """The first row of a query, or None."""
        found = self.rows(conn, statement, params)
        return found[0] if found else None

    def rows(self, conn: sa.Connection, statement: Any, params: Params) -> list[Any]:
        """The rows of a query, each with its columns as attributes."""
        return self.query(conn, statement, params)()

    def query(self, conn: sa.Connection, statement: Any,
              params: Params) -> Callable[[], list[Any]]:
        """Send a query now; its rows (as :meth:`rows`) when the result is called. In a
        pipeline, queries sent before the first of them is read share a round trip."""
        lists = self._lists(statement, params)
        plan = self._plan(statement, params, lists)
        if plan is None:
            found = list(conn.execute(statement, params).all())
            return lambda: found
        with self._translated(conn):
            cursor = driver_connection(conn).execute(
                plan.sql, plan.arguments(_expanded(params, lists)))
        return partial(self._read, conn, plan, cursor)

    def _read(self, conn: sa.Connection, plan: _Plan, cursor: Any) -> list[Any]:
        with self._translated(conn):
            fetched = cursor.fetchall()
        results = self._results.get(plan)
        if results is None:  # what they are may depend on the column's type on the wire
            results = self._results[plan] = tuple(
                kind.result_processor(self._dialect, column[1])  # its type_code
                for kind, column in zip(plan.types, cursor.description, strict=True))
        if any(results):
            fetched = [
                tuple(v if f is None else f(v) for v, f in zip(row, results, strict=True))
                for row in fetched
            ]
        return [plan.row._make(row) for row in fetched]

    def run(self, conn: sa.Connection, statement: Any, params: Params | Sequence[Params]) -> None:
        """Execute a change, once or (given a list of parameter sets) once per set."""
        many: Sequence[Params] | None = None if isinstance(params, Mapping) else params
        first = params if isinstance(params, Mapping) else params[0]
        lists = self._lists(statement, first)
        plan = self._plan(statement, first, lists)
        if plan is None or (many is not None and lists):
            conn.execute(statement, params)  # IN lists in executemany: SQLAlchemy expands
            return
        driver = driver_connection(conn)
        with self._translated(conn):
            if many is not None:
                driver.cursor().executemany(plan.sql, [plan.arguments(p) for p in many])
            else:
                driver.execute(plan.sql, plan.arguments(_expanded(first, lists)))

    @contextlib.contextmanager
    def pipelined(self, conn: sa.Connection) -> Iterator[None]:
        """Pipeline the statements run here until the end of the block, and commit
        with the last of them if it ends without an error (PostgreSQL; elsewhere,
        nothing changes). Use only this object's statements inside, and nothing
        after it in the same transaction."""
        if not (self._direct and self._pipelines):
            yield
            return
        driver = driver_connection(conn)
        with self._translated(conn), driver.pipeline():
            yield
            # Queued, not ``driver.commit()``, which syncs and then the pipeline's end
            # syncs again: one round trip for what is still unanswered and the commit.
            # The transaction SQLAlchemy began then finds nothing left to commit.
            driver.execute("COMMIT")

    @contextlib.contextmanager
    def _translated(self, conn: sa.Connection) -> Iterator[None]:
        """The driver's errors as SQLAlchemy's; a lost connection is invalidated."""
        dbapi = self._dialect.loaded_dbapi
        try:
            yield
        except sa.exc.DBAPIError:
            raise
        except dbapi.Error as exc:
            lost = self._dialect.is_disconnect(exc, driver_connection(conn), None)
            if lost:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                None, None, exc, dbapi.Error, connection_invalidated=lost,
                dialect=self._dialect) from exc

    def _lists(self, statement: Any, params: Params) -> dict[str, int]:
        """The lengths of the IN lists given for ``statement``, by parameter name."""
        names = self._in_lists.get(statement)
        if names is None:
            binds = statement.compile(dialect=self._dialect).binds.values()
            names = self._in_lists[statement] = frozenset(b.key for b in binds if b.expanding)
        return {name: len(params[name]) for name in names if name in params}

    def _plan(self, statement: Any, params: Params, lists: dict[str, int]) -> _Plan | None:
        key = (statement, tuple(params), tuple(lists.values()))
        if key not in self._plans:
            self._plans[key] = self._compile(statement, params, lists)
        return self._plans[key]

    def _compile(self, statement: Any, params: Params, lists: dict[str, int]) -> _Plan | None:
        if not self._direct:
            return None
        compiled = statement.compile(dialect=self._dialect, column_keys=list(params))
        named = compiled.positiontup is None
        if named and self._dialect.paramstyle != "pyformat":
            return None  # a parameter style this module does not speak
        sql = compiled.string
        if lists:  # "IN (?, ?, ?)": one placeholder per item, named ids_1, ids_2, ...
            expanded = compiled.construct_expanded_state(dict(params))
            sql = expanded.statement
            names = (list(dict.fromkeys(_NAMED.findall(sql))) if named
                     else list(expanded.positiontup or ()))
        else:
            names = (list(dict.fromkeys(_NAMED.findall(sql))) if named
                     else list(compiled.positiontup or ()))
        base = {n: n if n in compiled.binds else n.rpartition("_")[0] for n in names}
        if any(b not in compiled.binds for b in base.values()):
            return None  # expanded under names this module does not know
        dialect = self._dialect  # each type as the dialect has it (psycopg wraps JSON)
        binds = tuple(compiled.binds[base[n]].type.dialect_impl(dialect).bind_processor(dialect)
                      for n in names)
        defaults = tuple(None if base[n] != n else compiled.binds[n].effective_value
                         for n in names)
        row: Any = None
        types: tuple[Any, ...] = ()
        returning = isinstance(statement, UpdateBase) and bool(statement.exported_columns)
        if isinstance(statement, sa.Select) or returning:
            columns = list(statement.exported_columns if returning
                           else statement.selected_columns)
            row = _make_row_type([str(c.key) for c in columns])
            types = tuple(c.type.dialect_impl(dialect) for c in columns)
        return _Plan(sql, tuple(names), defaults, binds, row, types, named)


def _make_row_type(names: list[str]) -> Any:
    """A namedtuple class: rows with their columns as attributes, as SQLAlchemy's."""
    make: Any = namedtuple  # its fields are known only at run time
    return make("Row", names)


def driver_connection(conn: sa.Connection) -> Any:
    """The DB-API connection under ``conn``, inside the transaction it began."""
    driver = conn.connection.driver_connection
    assert driver is not None, "a connection that is not closed has its driver's"
    return driver


def _expanded(params: Params, lists: dict[str, int]) -> Params:
    """``{"ids": [a, b]}`` as ``{"ids_1": a, "ids_2": b}``, as the SQL names them."""
    if not lists:
        return params
    flat = dict(params)
    for name in lists:
        flat.update((f"{name}_{i}", v) for i, v in enumerate(params[name], 1))
    return flat
