"""How each database spells SQL: quoting, placeholders, clauses, type names, transactions.

``nextorm.sql`` builds every statement from these spellings; nothing else writes a piece of SQL
that differs between databases. Adding a database means one ``Dialect`` subclass here (and a
provider module for its driver).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ..types import COLUMN_TYPES, FloatArray, IntArray, Json, LongStr, StrArray

__all__ = ["DECIMAL_COLLATION", "Dialect", "NeedsScope", "PostgresDialect", "SQLiteDialect"]

#: the collation of Decimal columns on SQLite (stored as text): its provider registers it on every
#: connection it opens
DECIMAL_COLLATION = "nextorm_decimal"


class NeedsScope(Exception):
    """A statement reads another table's column: it is rendered again with table aliases."""


class Dialect:
    """The spelling shared by the supported databases; subclasses override where theirs differs."""

    name = ""
    #: the database's own name ("SQLite"): the dialect compares equal to it, as Pony's dialect string does
    title = ""
    #: placeholder for one bound parameter
    param = "?"
    #: column type names by Python type
    type_names: dict[type, str] = {}
    #: the column definition (after the quoted name) of an auto-incrementing int primary key
    auto_pk_type = ""
    #: whether foreign keys are added by ALTER TABLE once every table exists (else inside CREATE TABLE)
    late_foreign_keys = False
    #: most values bound to one statement
    max_params = 999
    #: most rows one ``UPDATE ... FROM (VALUES ...)`` updates; 0: a batch of updates is an
    #: executemany of one-row UPDATEs (cheap where the driver keeps the statement prepared)
    update_rows_per_statement = 0

    def __init__(self) -> None:
        self._column_lists: dict[tuple[str, ...], str] = {}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return other == self.title
        return self is other

    def __hash__(self) -> int:
        # equal to its name, so it hashes as its name (``dialect in {"SQLite": ...}``)
        return hash(self.title)

    def __str__(self) -> str:
        return self.title

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.title}>"

    # -- names and values ----------------------------------------------------------------------

    def normalize_name(self, name: str) -> str:
        """The table or column name to use for an entity or attribute name given no explicit one."""
        return name

    def quote(self, name: str) -> str:
        """``name`` as a quoted identifier."""
        return '"' + name.replace('"', '""') + '"'

    def column(self, name: str) -> str:
        """A column of the statement's own table (qualified by ``nextorm.sql.Scope`` where tables join)."""
        return self.quote(name)

    def column_ref(self, ref: Any) -> str:
        """A column read through a join or from a nested query: only a ``nextorm.sql.Scope`` spells it."""
        raise NeedsScope

    def column_refs(self, ref: Any) -> list[str]:
        """The columns of a composite reference read through a join: only a ``nextorm.sql.Scope`` spells them."""
        raise NeedsScope

    def source_column(self, source: Any, name: str) -> str:
        """A column of another object a query ranges over: only a ``nextorm.sql.Scope`` spells it."""
        raise NeedsScope

    def column_list(self, names: tuple[str, ...]) -> str:
        """``names`` quoted and separated by commas (remembered: entities select the same lists)."""
        text = self._column_lists.get(names)
        if text is None:
            text = self._column_lists[names] = ", ".join(map(self.quote, names))
        return text

    def strict_quote(self, name: str) -> str:
        """``name`` quoted so that an unknown column is an error, never read as a string literal."""
        return self.quote(name)

    def placeholders(self, count: int) -> str:
        """``count`` placeholders separated by commas."""
        return ", ".join([self.param] * count)

    def escape_percent(self, sql: str) -> str:
        """Raw SQL text made safe for this driver's parameter syntax."""
        return sql

    #: the Python types the driver binds as they are (others are stored as their columns store them)
    native_types: frozenset[type] = frozenset()

    def literal(self, value: Any) -> Any:
        """A Python value of a query (not of a column) as a bound parameter."""
        py_type = type(value)
        if py_type in self.native_types or py_type is bool:
            return value
        column_type = COLUMN_TYPES.get(py_type)
        convert = None if column_type is None else column_type.to_db
        return value if convert is None else convert(value)

    def decimal_value(self, sql: str) -> str:
        """A computed Decimal value (not a column) as the database compares and orders it by number."""
        return sql

    def interval(self, value: timedelta, of_date: bool) -> Any:
        """The parameter adding ``value`` to a date (whole days) or a datetime."""
        return value

    # -- clauses -------------------------------------------------------------------------------

    def limit_clause(self, limit: int | None, offset: int, params: list[Any]) -> str:
        """LIMIT/OFFSET with bound values; no OFFSET when it is 0 (a get's ``LIMIT 2``, a ``[:n]``)."""
        params.append(-1 if limit is None else limit)
        if not offset:
            return f" LIMIT {self.param}"
        params.append(offset)
        return f" LIMIT {self.param} OFFSET {self.param}"

    def for_update_clause(self, mode: str) -> str:
        """The locking suffix of a SELECT ... FOR UPDATE; ``mode`` is wait, nowait or skip_locked."""
        return {
            "wait": " FOR UPDATE",
            "nowait": " FOR UPDATE NOWAIT",
            "skip_locked": " FOR UPDATE SKIP LOCKED",
        }[mode]

    def returning_clause(self, *columns: str) -> str:
        """The suffix of an INSERT returning ``columns`` of each new row."""
        return " RETURNING " + ", ".join(self.quote(column) for column in columns)

    def column_typed_null(self, table: str, column: str) -> str:
        """A NULL of the type ``column`` of ``table`` has in the database."""
        raise NotImplementedError(f"{self.title} updates a batch of rows with one statement per row")

    def ignore_conflict_clause(self) -> str:
        """The suffix of an INSERT that skips a row clashing with a unique key instead of failing."""
        return " ON CONFLICT DO NOTHING"

    # -- operators -----------------------------------------------------------------------------

    def string_test(self, op: str, column: str, value: str, params: list[Any]) -> str:
        """Case-sensitive startswith / endswith / contains."""
        raise NotImplementedError

    def contains_value_sql(self, text: str, part: str) -> str:
        """Whether the string ``text`` contains the string value ``part`` (both SQL texts)."""
        return f"instr({text}, {part}) > 0"

    def affix_value_sql(self, op: str, text: Callable[[], str], part: Callable[[], str]) -> str:
        """Whether the string ``text`` starts (``op`` 'startswith') or ends with the string value
        ``part``; each call of ``text``/``part`` spells it once more, binding its values in order."""
        if op == "startswith":
            return f"instr({text()}, {part()}) = 1"
        # substr() from where the suffix would begin: never equal to a suffix longer than the text
        return f"substr({text()}, length({text()}) - length({part()}) + 1) = {part()}"

    # -- Json paths and arrays ---------------------------------------------------------------------

    def json_value_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        """The part of a Json ``column`` at ``path`` (str keys, int indexes; negative from the end)."""
        raise NotImplementedError

    def json_compare_sql(
        self, column: str, path: tuple[Any, ...], op: str, value: Any, params: list[Any]
    ) -> str:
        """The part at ``path`` compared (SQL operator ``op``) with a JSON value (not None)."""
        raise NotImplementedError

    def json_is_null_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        """Whether the part at ``path`` is JSON null or missing."""
        raise NotImplementedError

    def json_contains_sql(self, column: str, path: tuple[Any, ...], item: Any, params: list[Any]) -> str:
        """Whether the object at ``path`` has the key ``item``, or the array there the item ``item``."""
        raise NotImplementedError

    def json_length_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        """The length of the Json array at ``path``."""
        raise NotImplementedError

    def array_has_sql(self, column: str, item: Any, params: list[Any]) -> str:
        """Whether the array ``column`` holds ``item``."""
        raise NotImplementedError

    def array_has_all_sql(self, column: str, items: Any, sql_type: str, params: list[Any]) -> str:
        """Whether the array ``column`` (of type ``sql_type``) holds every one of ``items``."""
        raise NotImplementedError

    def array_length_sql(self, column: str) -> str:
        """The number of items of the array ``column``."""
        raise NotImplementedError

    def array_item_sql(self, column: str, index: int, params: list[Any]) -> str:
        """The item ``index`` (negative: from the end) of the array ``column``; NULL when there is none."""
        raise NotImplementedError

    def json_part_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        """The part of a Json ``column`` at ``path`` as the column stores JSON (NULL or JSON null when missing)."""
        return self.json_value_sql(column, path, params)

    def json_scalar_sql(self, column: str, path: tuple[Any, ...], py_type: Any, params: list[Any]) -> str:
        """The JSON scalar at ``path`` as an SQL value of ``py_type`` (str, int, float, bool, Decimal)."""
        raise NotImplementedError

    def json_truth_sql(self, part: str) -> str:
        """Python's truth of a JSON value (``part``: JSON text or jsonb): not null, false, 0, "", [] or {}."""
        return (
            f"COALESCE(CAST({part} AS TEXT), 'null') "
            "NOT IN ('null', 'false', '0', '0.0', '\"\"', '[]', '{}')"
        )

    def array_item_at_sql(self, column: str, index: str) -> str:
        """The item of the array ``column`` at the int value ``index`` (SQL text; negative from the end)."""
        raise NotImplementedError

    def array_slice_sql(self, column: str, start: str | None, stop: str | None) -> str:
        """The items of the array ``column`` from ``start`` up to ``stop`` (SQL texts of ints, None
        for an end), as an array of the column's type; negative bounds count from the end."""
        raise NotImplementedError

    def int_value(self, text: str) -> str:
        """An int value (a bound parameter or an expression) as an SQL integer."""
        return text

    def _from_end(self, bound: str, length: str, clamp: bool) -> str:
        """A slice bound (a column of the derived table) counted from the end when negative."""
        counted = f"{length} + {bound}"
        if clamp:
            counted = self.function_sql("greatest", [counted, "0"])
        return f"CASE WHEN {bound} < 0 THEN {counted} ELSE {bound} END"

    def string_slice_sql(self, text: str, start: str | None, stop: str | None) -> str:
        """``text[start:stop]`` with Python's bounds: SQL texts of ints (negative from the end, None
        for an end); the string and the bounds are evaluated once."""
        length = self.function_sql("len", ["nx_k.nx_s"])
        first = "0" if start is None else self._from_end("nx_k.nx_lo", length, clamp=True)
        if stop is None:
            spelled = f"substr(nx_k.nx_s, {first} + 1)"
        else:
            last = self._from_end("nx_k.nx_hi", length, clamp=True)
            count = self.function_sql("greatest", [f"{last} - ({first})", "0"])
            spelled = f"substr(nx_k.nx_s, {first} + 1, {count})"
        bounds = "".join(
            f", {self.int_value(bound)} AS {name}"
            for bound, name in ((start, "nx_lo"), (stop, "nx_hi"))
            if bound is not None
        )
        return f"(SELECT {spelled} FROM (SELECT {text} AS nx_s{bounds}) AS nx_k)"

    def string_item_sql(self, text: str, index: str) -> str:
        """``text[index]`` (SQL text of an int, negative from the end); '' past either end."""
        length = self.function_sql("len", ["nx_k.nx_s"])
        at = self._from_end("nx_k.nx_i", length, clamp=False)
        return (
            f"(SELECT CASE WHEN {at} < 0 THEN '' ELSE substr(nx_k.nx_s, {at} + 1, 1) END "
            f"FROM (SELECT {text} AS nx_s, {self.int_value(index)} AS nx_i) AS nx_k)"
        )

    #: spellings of the value functions whose row in ``nextorm.expressions.FUNCTIONS`` is None:
    #: templates over the arguments' texts, each used once and in order
    function_spellings: dict[str, str] = {}

    def function_sql(self, name: str, args: list[str]) -> str:
        """A value function of ``nextorm.expressions.FUNCTIONS`` that databases spell differently."""
        return self.function_spellings[name].format(*args, args=", ".join(args))

    def group_concat_sql(self, arg: str, distinct: bool, sep: str | None, params: list[Any]) -> str:
        """The aggregate joining the texts of ``arg`` (of its distinct values) with ``sep`` (a comma by default)."""
        raise NotImplementedError

    def in_values_sql(self, column: str, values: list[Any], params: list[Any]) -> str:
        """``column IN (values)``."""
        if not values:
            return "0 = 1"
        params.extend(values)
        return f"{column} IN ({self.placeholders(len(values))})"

    # -- types and schema ----------------------------------------------------------------------

    def reference_sql_type(self, attr: Any) -> str:
        """The column type of reference ``attr``: its own ``sql_type``, else its target key's."""
        if attr.sql_type:
            return str(attr.sql_type)
        leaves = getattr(attr, "leaves", ())
        key_type = self.sql_type(leaves[0] if leaves else attr.py_type._pk_attrs_[0])
        serial = {"serial": "integer", "bigserial": "bigint", "smallserial": "smallint"}.get(key_type.lower())
        if serial is None:
            return key_type
        return serial if key_type.islower() else serial.upper()

    def bool_literal(self, value: bool) -> str:
        """``value`` as an SQL literal."""
        return "TRUE" if value else "FALSE"

    def sql_type(self, attr: Any) -> str:
        """The column type in CREATE TABLE for ``attr``."""
        if attr.sql_type:
            return str(attr.sql_type)
        return self.type_names[attr.py_type]

    def add_constraint_sql(self, table: str, name: str, constraint: str) -> str:
        """A statement adding ``constraint`` to a quoted ``table`` unless one called ``name`` exists."""
        return f"ALTER TABLE {table} ADD CONSTRAINT {self.quote(name)} {constraint}"

    def table_columns_query(self, table: str) -> tuple[str, tuple[Any, ...], int]:
        """A query listing the columns of ``table``: SQL, parameters, position of the name in a row."""
        raise NotImplementedError

    # -- transactions --------------------------------------------------------------------------

    def begin_sql(self, immediate: bool, serializable: bool, readonly: bool = False) -> str:
        """The statement that opens a transaction (a readonly one takes no write lock)."""
        return "BEGIN IMMEDIATE" if immediate and not readonly else "BEGIN"

    commit_sql = "COMMIT"
    rollback_sql = "ROLLBACK"

    def savepoint_sql(self, name: str) -> str:
        """The statement setting savepoint ``name``."""
        return f"SAVEPOINT {name}"

    def release_savepoint_sql(self, name: str) -> str:
        """The statement keeping the work done since savepoint ``name``."""
        return f"RELEASE SAVEPOINT {name}"

    def rollback_to_savepoint_sql(self, name: str) -> str:
        """The statement undoing the work done since savepoint ``name``."""
        return f"ROLLBACK TO SAVEPOINT {name}"


class SQLiteDialect(Dialect):
    """SQLite 3.35+ (RETURNING, ON CONFLICT, json_each)."""

    name = "sqlite"
    title = "SQLite"
    param = "?"
    # SQLITE_MAX_VARIABLE_NUMBER: 999 before SQLite 3.32
    max_params = 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
    type_names = {
        int: "INTEGER",
        str: "TEXT",
        LongStr: "TEXT",
        float: "REAL",
        bool: "BOOLEAN",
        datetime: "TEXT",
        date: "TEXT",
        time: "TEXT",
        timedelta: "INTEGER",
        bytes: "BLOB",
        UUID: "TEXT",
        Json: "TEXT",
        # arrays as JSON text: json_each and json_array_length query them
        IntArray: "TEXT",
        StrArray: "TEXT",
        FloatArray: "TEXT",
    }
    auto_pk_type = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def strict_quote(self, name: str) -> str:
        # a double-quoted name that is not a column reads as a string in SQLite
        return "`" + name.replace("`", "``") + "`"

    def returning_clause(self, *columns: str) -> str:
        return " RETURNING " + ", ".join(self.strict_quote(column) for column in columns)

    def for_update_clause(self, mode: str) -> str:
        # SQLite locks the whole database instead: the session begins with BEGIN IMMEDIATE.
        return ""

    # JSON text: json1 functions with a JSON path bound as a parameter ('$."key"[0]')

    def _json_path(self, path: tuple[Any, ...]) -> str:
        parts = ["$"]
        for key in path:
            if isinstance(key, int):
                parts.append(f"[{key}]" if key >= 0 else f"[#{key}]")
            else:
                parts.append('."' + key + '"')
        return "".join(parts)

    def json_value_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        params.append(self._json_path(path))
        return f"json_extract({column}, ?)"

    def json_compare_sql(
        self, column: str, path: tuple[Any, ...], op: str, value: Any, params: list[Any]
    ) -> str:
        params.append(self._json_path(path))
        if isinstance(value, (dict, list)):
            # json_extract gives an object or array as minified JSON text
            params.append(json.dumps(value, separators=(",", ":"), ensure_ascii=False))
            return f"json_extract({column}, ?) {op} json(?)"
        params.append(value)
        return f"json_extract({column}, ?) {op} ?"

    def json_is_null_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        params.append(self._json_path(path))
        return f"json_extract({column}, ?) IS NULL"

    def json_contains_sql(self, column: str, path: tuple[Any, ...], item: Any, params: list[Any]) -> str:
        path_text = self._json_path(path)
        params.extend((path_text, path_text, item, item))
        return (
            f"EXISTS (SELECT 1 FROM json_each({column}, ?) AS j "
            f"WHERE CASE json_type({column}, ?) WHEN 'object' THEN j.key = ? ELSE j.value = ? END)"
        )

    def json_length_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        params.append(self._json_path(path))
        return f"json_array_length({column}, ?)"

    def array_has_sql(self, column: str, item: Any, params: list[Any]) -> str:
        params.append(item)
        return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = ?)"

    def array_has_all_sql(self, column: str, items: Any, sql_type: str, params: list[Any]) -> str:
        params.append(items)
        return (
            "NOT EXISTS (SELECT 1 FROM json_each(?) AS wanted "
            f"WHERE wanted.value NOT IN (SELECT value FROM json_each({column})))"
        )

    def array_length_sql(self, column: str) -> str:
        return f"json_array_length({column})"

    def array_item_sql(self, column: str, index: int, params: list[Any]) -> str:
        return self.json_value_sql(column, (index,), params)

    def json_part_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        # json_extract gives JSON true and false as 1 and 0, a string unquoted: JSON text instead
        path_text = self._json_path(path)
        params.extend((path_text, path_text))
        return (
            f"CASE json_type({column}, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"ELSE json_quote(json_extract({column}, ?)) END"
        )

    def json_scalar_sql(self, column: str, path: tuple[Any, ...], py_type: Any, params: list[Any]) -> str:
        value = self.json_value_sql(column, path, params)
        if py_type is str:
            return f"CAST({value} AS TEXT)"
        if py_type is int:
            return f"CAST({value} AS INTEGER)"
        if py_type is float:
            return f"CAST({value} AS REAL)"
        return value

    def array_item_at_sql(self, column: str, index: str) -> str:
        path = "CASE WHEN nx_k.nx_i < 0 THEN '$[#' || nx_k.nx_i || ']' ELSE '$[' || nx_k.nx_i || ']' END"
        return f"(SELECT json_extract({column}, {path}) FROM (SELECT {index} AS nx_i) AS nx_k)"

    def array_slice_sql(self, column: str, start: str | None, stop: str | None) -> str:
        length = f"json_array_length({column})"
        tests = []
        if start is not None:
            tests.append(f"j.key >= {self._from_end('nx_k.nx_lo', length, clamp=False)}")
        if stop is not None:
            tests.append(f"j.key < {self._from_end('nx_k.nx_hi', length, clamp=False)}")
        where = f" WHERE {' AND '.join(tests)}" if tests else ""
        # json_each gives the items in order; json_group_array keeps it
        return (
            f"CASE WHEN {column} IS NULL THEN NULL ELSE (SELECT json_group_array(j.value) "
            f"FROM (SELECT {start or 'NULL'} AS nx_lo, {stop or 'NULL'} AS nx_hi) AS nx_k, "
            f"json_each({column}) AS j{where}) END"
        )

    def string_test(self, op: str, column: str, value: str, params: list[Any]) -> str:
        if value == "":
            return f"{column} IS NOT NULL"
        if op == "startswith":
            params.append(value)
            return f"instr({column}, ?) = 1"
        if op == "contains":
            params.append(value)
            return f"instr({column}, ?) > 0"
        params.extend((len(value), value))
        return f"substr({column}, -?) = ?"

    function_spellings = {
        "%": "({0} % {1})",
        # Python's case mapping, which the provider registers on each connection
        "upper": "py_upper({0})",
        "lower": "py_lower({0})",
        "int_div_true": "(CAST({0} AS REAL) / {1})",
        "int": "CAST({0} AS INTEGER)",
        "float": "CAST({0} AS REAL)",
        "strip": "trim({0})",
        "strip_chars": "trim({0}, {1})",
        "len": "length({0})",
        "least": "min({args})",
        "greatest": "max({args})",
        "year": "CAST(strftime('%Y', {0}) AS INTEGER)",
        "month": "CAST(strftime('%m', {0}) AS INTEGER)",
        "day": "CAST(strftime('%d', {0}) AS INTEGER)",
        "hour": "CAST(strftime('%H', {0}) AS INTEGER)",
        "minute": "CAST(strftime('%M', {0}) AS INTEGER)",
        "second": "CAST(strftime('%S', {0}) AS INTEGER)",
        "date": "date({0})",
        "date_add": "date({0}, {1})",
        "datetime_add": "strftime('%Y-%m-%d %H:%M:%f', {0}, {1})",
        # microseconds, as SQLite stores a timedelta
        "date_diff": "CAST(round((julianday({0}) - julianday({1})) * 86400000000) AS INTEGER)",
        "datetime_diff": "CAST(round((julianday({0}) - julianday({1})) * 86400000000) AS INTEGER)",
    }

    def interval(self, value: timedelta, of_date: bool) -> Any:
        # a modifier of SQLite's date functions
        if of_date:
            return f"{value.days:+d} days"
        return f"{value.total_seconds():+.6f} seconds"

    def group_concat_sql(self, arg: str, distinct: bool, sep: str | None, params: list[Any]) -> str:
        if distinct:  # SQLite's DISTINCT aggregates take one argument: the separator is a comma
            return f"group_concat(DISTINCT {arg})"
        if sep is None:
            return f"group_concat({arg})"
        params.append(sep)
        return f"group_concat({arg}, ?)"

    def decimal_value(self, sql: str) -> str:
        # a Decimal is text on SQLite: a bound Decimal or coalesce() of a column would compare as
        # text (a number sorts below any text, '10' below '4.5'); NUMERIC affinity compares numbers,
        # and a Decimal column compared with it is read as its number
        return f"CAST({sql} AS NUMERIC)"

    def sql_type(self, attr: Any) -> str:
        if not attr.sql_type and attr.py_type is Decimal:
            # text keeps every digit (a DECIMAL column's numeric affinity would make a float of
            # it); the collation compares and orders by numeric value
            return f"TEXT COLLATE {DECIMAL_COLLATION}"
        return super().sql_type(attr)

    def in_values_sql(self, column: str, values: list[Any], params: list[Any]) -> str:
        # a long list goes as one JSON parameter (bytes as hex literals): one statement, any length
        if len(values) <= 8:
            return super().in_values_sql(column, values, params)
        if all(isinstance(v, bytes) for v in values):
            literals = ", ".join("X'" + v.hex() + "'" for v in values)
            return f"{column} IN ({literals})"
        if not all(v is None or isinstance(v, (int, float, str)) for v in values):
            return super().in_values_sql(column, values, params)
        params.append(json.dumps(values))
        return f"{column} IN (SELECT value FROM json_each(?))"

    def table_columns_query(self, table: str) -> tuple[str, tuple[Any, ...], int]:
        return f"PRAGMA table_info({self.quote(table)})", (), 1


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3 (``%s`` placeholders)."""

    name = "postgres"
    title = "PostgreSQL"
    param = "%s"
    # the protocol counts a statement's parameters in 16 bits
    max_params = 65535
    # unprepared (PgBouncer-safe) one-row UPDATEs are parsed and planned once per row by the server
    update_rows_per_statement = 500
    type_names = {
        int: "BIGINT",
        str: "TEXT",
        LongStr: "TEXT",
        float: "DOUBLE PRECISION",
        bool: "BOOLEAN",
        date: "DATE",
        time: "TIME",
        timedelta: "INTERVAL",
        bytes: "BYTEA",
        UUID: "UUID",
        Json: "JSONB",
        IntArray: "BIGINT[]",
        StrArray: "TEXT[]",
        FloatArray: "DOUBLE PRECISION[]",
    }
    auto_pk_type = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    # a referenced table may not exist yet while the tables are created one by one
    late_foreign_keys = True

    def normalize_name(self, name: str) -> str:
        return name.lower()

    def escape_percent(self, sql: str) -> str:
        return sql.replace("%", "%%")

    def limit_clause(self, limit: int | None, offset: int, params: list[Any]) -> str:
        params.append(limit)
        if not offset:
            return " LIMIT %s"
        params.append(offset)
        return " LIMIT %s OFFSET %s"

    def column_typed_null(self, table: str, column: str) -> str:
        # the field of a NULL of the table's row type: the column's own type, whatever the DDL said
        return f"(NULL::{self.quote(table)}).{self.quote(column)}"

    # JSONB operators with the path as a text[] parameter; arrays are PostgreSQL arrays

    def json_value_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        params.append([str(key) for key in path])
        return f"({column} #> CAST(%s AS TEXT[]))"

    def json_compare_sql(
        self, column: str, path: tuple[Any, ...], op: str, value: Any, params: list[Any]
    ) -> str:
        left = self.json_value_sql(column, path, params)
        params.append(json.dumps(value, ensure_ascii=False))
        return f"{left} {op} CAST(%s AS JSONB)"

    def json_is_null_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        value = self.json_value_sql(column, path, params)
        return f"COALESCE(jsonb_typeof({value}), 'null') = 'null'"

    def json_contains_sql(self, column: str, path: tuple[Any, ...], item: Any, params: list[Any]) -> str:
        value = self.json_value_sql(column, path, params)
        if isinstance(item, str):  # ? tests an object's keys and an array's string items
            params.append(item)
            return f"COALESCE({value} ? %s, FALSE)"
        params.append(json.dumps([item]))
        return f"COALESCE({value} @> CAST(%s AS JSONB), FALSE)"

    def json_length_sql(self, column: str, path: tuple[Any, ...], params: list[Any]) -> str:
        return f"jsonb_array_length({self.json_value_sql(column, path, params)})"

    def array_has_sql(self, column: str, item: Any, params: list[Any]) -> str:
        params.append(item)
        return f"COALESCE(%s = ANY({column}), FALSE)"

    def array_has_all_sql(self, column: str, items: Any, sql_type: str, params: list[Any]) -> str:
        params.append(items)
        return f"COALESCE({column} @> CAST(%s AS {sql_type}), FALSE)"

    def array_length_sql(self, column: str) -> str:
        return f"COALESCE(cardinality({column}), 0)"

    def array_item_sql(self, column: str, index: int, params: list[Any]) -> str:
        if index >= 0:
            return f"{column}[{index + 1}]"
        return f"{column}[cardinality({column}) + {index + 1}]"

    def contains_value_sql(self, text: str, part: str) -> str:
        return f"strpos({text}, {part}) > 0"

    def affix_value_sql(self, op: str, text: Callable[[], str], part: Callable[[], str]) -> str:
        if op == "startswith":
            return f"starts_with({text()}, {part()})"
        return f"right({text()}, char_length({part()})) = {part()}"

    def json_scalar_sql(self, column: str, path: tuple[Any, ...], py_type: Any, params: list[Any]) -> str:
        params.append([str(key) for key in path])
        text = f"({column} #>> CAST(%s AS TEXT[]))"
        spelling = {int: "BIGINT", float: "DOUBLE PRECISION", bool: "BOOLEAN", Decimal: "NUMERIC"}.get(
            py_type
        )
        return text if spelling is None else f"CAST({text} AS {spelling})"

    def int_value(self, text: str) -> str:
        # a bound int may arrive as any integer type; substr() and subscripts take an integer
        return f"CAST({text} AS INTEGER)"

    def array_item_at_sql(self, column: str, index: str) -> str:
        at = f"CASE WHEN nx_k.nx_i < 0 THEN cardinality({column}) + nx_k.nx_i ELSE nx_k.nx_i END + 1"
        return f"(SELECT {column}[{at}] FROM (SELECT {self.int_value(index)} AS nx_i) AS nx_k)"

    def array_slice_sql(self, column: str, start: str | None, stop: str | None) -> str:
        length = f"COALESCE(cardinality({column}), 0)"
        first = "" if start is None else f"{self._from_end('nx_k.nx_lo', length, clamp=True)} + 1"
        last = "" if stop is None else self._from_end("nx_k.nx_hi", length, clamp=True)
        bounds = ", ".join(
            f"{self.int_value(bound)} AS {name}"
            for bound, name in ((start, "nx_lo"), (stop, "nx_hi"))
            if bound is not None
        )
        sliced = f"{column}[{first}:{last}]"
        if not bounds:
            return sliced
        # a slice past the end is empty; PostgreSQL gives '{}' for it, which reads as []
        return f"(SELECT {sliced} FROM (SELECT {bounds}) AS nx_k)"

    def string_test(self, op: str, column: str, value: str, params: list[Any]) -> str:
        if value == "":
            return f"{column} IS NOT NULL"
        if op == "startswith":
            params.append(value)
            return f"starts_with({column}, %s)"
        if op == "contains":
            params.append(value)
            return f"strpos({column}, %s) > 0"
        params.extend((value, value))
        return f"right({column}, char_length(%s)) = %s"

    function_spellings = {
        "%": "({0} %% {1})",
        "upper": "upper({0})",
        "lower": "lower({0})",
        "int_div_true": "(CAST({0} AS DOUBLE PRECISION) / {1})",
        "int": "CAST({0} AS BIGINT)",
        "float": "CAST({0} AS DOUBLE PRECISION)",
        "strip": "btrim({0})",
        "strip_chars": "btrim({0}, {1})",
        "len": "char_length({0})",
        "least": "least({args})",
        "greatest": "greatest({args})",
        "year": "CAST(EXTRACT(YEAR FROM {0}) AS INTEGER)",
        "month": "CAST(EXTRACT(MONTH FROM {0}) AS INTEGER)",
        "day": "CAST(EXTRACT(DAY FROM {0}) AS INTEGER)",
        "hour": "CAST(EXTRACT(HOUR FROM {0}) AS INTEGER)",
        "minute": "CAST(EXTRACT(MINUTE FROM {0}) AS INTEGER)",
        "second": "CAST(floor(EXTRACT(SECOND FROM {0})) AS INTEGER)",
        "date": "CAST({0} AS DATE)",
        "date_add": "CAST(({0} + {1}) AS DATE)",
        "datetime_add": "({0} + {1})",
        "date_diff": "(({0} - {1}) * INTERVAL '1 day')",
        "datetime_diff": "({0} - {1})",
    }
    native_types = frozenset({Decimal, datetime, date, time, timedelta, UUID})

    def group_concat_sql(self, arg: str, distinct: bool, sep: str | None, params: list[Any]) -> str:
        params.append("," if sep is None else sep)
        return f"string_agg({'DISTINCT ' if distinct else ''}CAST({arg} AS TEXT), %s)"

    def in_values_sql(self, column: str, values: list[Any], params: list[Any]) -> str:
        if not values:
            return "0 = 1"
        params.append(list(values))
        return f"{column} = ANY(%s)"

    def sql_type(self, attr: Any) -> str:
        if attr.sql_type:
            return str(attr.sql_type)
        py_type = attr.py_type
        if py_type is Decimal:
            return f"NUMERIC({attr.precision or 12}, {2 if attr.scale is None else attr.scale})"
        if py_type is datetime or py_type is time:
            name = "TIME" if py_type is time else "TIMESTAMPTZ" if attr.tz_aware else "TIMESTAMP"
            digits = attr.time_precision
            return name if digits == 6 else f"{name}({digits})"
        if py_type is str and attr.max_len is not None:
            return f"VARCHAR({attr.max_len})"
        if py_type is int and (attr.size is not None or attr.unsigned):
            # the smallest type holding the declared range: unsigned sizes need the next one up
            high = attr.ctype.size_high
            return "SMALLINT" if high < 2**15 else "INTEGER" if high < 2**31 else "BIGINT"
        return self.type_names[py_type]

    def add_constraint_sql(self, table: str, name: str, constraint: str) -> str:
        # create_tables runs again on an existing schema: an existing constraint is not an error
        return (
            "DO $$ BEGIN "
            f"{super().add_constraint_sql(table, name, constraint)}; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        )

    def table_columns_query(self, table: str) -> tuple[str, tuple[Any, ...], int]:
        return (
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
            0,
        )

    def begin_sql(self, immediate: bool, serializable: bool, readonly: bool = False) -> str:
        sql = "BEGIN ISOLATION LEVEL SERIALIZABLE" if serializable else "BEGIN"
        return f"{sql} READ ONLY" if readonly else sql
