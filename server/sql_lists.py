"""``column IN (a list of values)`` with the list bound as one parameter.

A plain ``column.in_(values)`` renders one placeholder per value on every execution: for the
thousand recipients of a campaign batch, SQLAlchemy spent ~1.3 ms of Python per query on that
alone, for queries that SQLite answers in a fraction of it. Here the list travels as a single
parameter: JSON unpacked by ``json_each`` on SQLite, an array compared with ``= ANY`` on
PostgreSQL. The statement's SQL is then the same for every list, so it is compiled once.
"""

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, Text, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import TypeDecorator, TypeEngine


class _ValueList(TypeDecorator[list[Any]]):
    """A list parameter: JSON text on SQLite, a native array on PostgreSQL."""

    impl = Text
    cache_ok = True

    def __init__(self, element: TypeEngine[Any]) -> None:
        super().__init__()
        self.element = element

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(self.element))
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: list[Any] | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return json.dumps(value)


class OneOf(ColumnElement[bool]):
    """True where ``column`` equals one of the bound list's values (see :func:`one_of`)."""

    type = Boolean()
    _is_implicitly_boolean = True  # a comparison: no "= 1" after it on SQLite
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: ColumnElement[Any], values: BindParameter[list[Any]]) -> None:
        self.column = column
        self.values = values


def one_of(column: Any, values: Iterable[Any] = (), *, param: str | None = None) -> OneOf:
    """``column IN values``, with ``values`` bound as one parameter (str or int columns).

    With ``param``, the list is named and given at execution instead (``{param: [...]}``), for
    a statement built once and run many times.
    """
    element = column.type if isinstance(column.type, TypeEngine) else Text()
    if param is not None:
        return OneOf(column, bindparam(param, type_=_ValueList(element)))
    return OneOf(column, bindparam(None, list(values), type_=_ValueList(element), unique=True))


@compiles(OneOf)
def _one_of_sqlite(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} IN (SELECT value FROM json_each({compiler.process(element.values, **kw)}))"


@compiles(OneOf, "postgresql")
def _one_of_postgresql(element: OneOf, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} = ANY({compiler.process(element.values, **kw)})"
