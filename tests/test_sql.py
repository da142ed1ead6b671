"""The SQL layer: statements of ``nextorm.sql`` spelled by each dialect of ``nextorm.providers.dialect``.

The README's "Databases" section promises SQLite and PostgreSQL with the same behaviour; every
statement nextorm sends is built here once and spelled per database. These tests pin the
spelling of each statement kind for both dialects, run the statements on the test databases,
and check that the layers above stay out of SQL spelling.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import nextorm
from nextorm import Database, db_session
from nextorm.expressions import OPERATORS, OrderBy, expression_for
from nextorm.providers.dialect import Dialect, PostgresDialect, SQLiteDialect
from nextorm.sql import (
    Col,
    ColumnDef,
    Count,
    CreateIndex,
    CreateTable,
    Delete,
    DropTable,
    Equals,
    ForeignKey,
    Insert,
    InSubquery,
    InValues,
    Join,
    KeyMatch,
    Select,
    Update,
    render,
)
from nextorm.types import column_type_for

SQLITE = SQLiteDialect()
POSTGRES = PostgresDialect()


def spelled(statement: Any, dialect: Dialect) -> tuple[str, list[Any]]:
    """The text and bound values of a query (Select/Count) or another statement (values bound per row)."""
    if isinstance(statement, (Select, Count)):
        return render(statement, dialect)
    return statement.sql(dialect), []


def column(name: str, py_type: type, **options: Any) -> SimpleNamespace:
    """An attribute stand-in with what expressions and ``sql_type`` read (the model is not needed)."""
    namespace = SimpleNamespace(
        name=name,
        column=name,
        columns=(name,),
        width=1,
        qualname=f"Item.{name}",
        entity=None,
        py_type=py_type,
        to_db=None,
        sql_type=None,
        max_len=None,
        precision=None,
        scale=None,
        tz_aware=False,
        time_precision=6,
        autostrip=True,
        size=None,
        unsigned=None,
        min=None,
        max=None,
    )
    namespace.__dict__.update(options)
    namespace.ctype = column_type_for(namespace)
    return namespace


# -- each statement kind, spelled by both dialects ---------------------------------------------

STATEMENTS: list[tuple[str, Any, tuple[str, list[Any]], tuple[str, list[Any]]]] = [
    (
        "select with order, limit and offset",
        Select("item", ("id", "name"), order=(("name", True), ("id", False)), limit=10, offset=5),
        ('SELECT "id", "name" FROM "item" ORDER BY "name" DESC, "id" LIMIT ? OFFSET ?', [10, 5]),
        ('SELECT "id", "name" FROM "item" ORDER BY "name" DESC, "id" LIMIT %s OFFSET %s', [10, 5]),
    ),
    (
        "select with an offset and no limit",
        Select("item", ("id",), offset=3),
        ('SELECT "id" FROM "item" LIMIT ? OFFSET ?', [-1, 3]),
        ('SELECT "id" FROM "item" LIMIT %s OFFSET %s', [None, 3]),
    ),
    (
        "select for update, nowait",
        Select("item", ("id",), where=(Equals("id", 7),), for_update="nowait"),
        ('SELECT "id" FROM "item" WHERE "id" = ?', [7]),
        ('SELECT "id" FROM "item" WHERE "id" = %s FOR UPDATE NOWAIT', [7]),
    ),
    (
        "select for update, skip locked",
        Select("item", ("id",), for_update="skip_locked"),
        ('SELECT "id" FROM "item"', []),
        ('SELECT "id" FROM "item" FOR UPDATE SKIP LOCKED', []),
    ),
    (
        "count of a table",
        Select("item", ("id",), where=(Equals("kind", "a"),), count=True),
        ('SELECT COUNT(*) FROM "item" WHERE "kind" = ?', ["a"]),
        ('SELECT COUNT(*) FROM "item" WHERE "kind" = %s', ["a"]),
    ),
    (
        "count of a limited query",
        Count(Select("item", ("id",), limit=2)),
        ('SELECT COUNT(*) FROM (SELECT "id" FROM "item" LIMIT ?) AS q', [2]),
        ('SELECT COUNT(*) FROM (SELECT "id" FROM "item" LIMIT %s) AS q', [2]),
    ),
    (
        "exists",
        Select("item", one=True, limit=1),
        ('SELECT 1 FROM "item" LIMIT ?', [1]),
        ('SELECT 1 FROM "item" LIMIT %s', [1]),
    ),
    (
        "join with a short IN list",
        Select(
            "tag",
            (Col("post", "j"), Col("id", "t")),
            alias="t",
            joins=(Join("post_tag", "j", Col("id", "t"), Col("tag", "j")),),
            where=(InValues(Col("post", "j"), [1, 2]),),
        ),
        (
            'SELECT j."post", t."id" FROM "tag" t JOIN "post_tag" j ON t."id" = j."tag" WHERE j."post" IN (?, ?)',
            [1, 2],
        ),
        (
            'SELECT j."post", t."id" FROM "tag" t JOIN "post_tag" j ON t."id" = j."tag" '
            'WHERE j."post" = ANY(%s)',
            [[1, 2]],
        ),
    ),
    (
        "a long IN list",
        Select("item", ("id",), where=(InValues("id", list(range(10))),)),
        (
            'SELECT "id" FROM "item" WHERE "id" IN (SELECT value FROM json_each(?))',
            ["[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"],
        ),
        ('SELECT "id" FROM "item" WHERE "id" = ANY(%s)', [list(range(10))]),
    ),
    (
        "an empty IN list",
        Select("item", ("id",), where=(InValues("id", []),)),
        ('SELECT "id" FROM "item" WHERE 0 = 1', []),
        ('SELECT "id" FROM "item" WHERE 0 = 1', []),
    ),
    (
        "subquery",
        Select(
            "tag",
            ("id",),
            where=(InSubquery("id", Select("post_tag", ("tag",), where=(Equals("post", 3),))),),
        ),
        ('SELECT "id" FROM "tag" WHERE "id" IN (SELECT "tag" FROM "post_tag" WHERE "post" = ?)', [3]),
        ('SELECT "id" FROM "tag" WHERE "id" IN (SELECT "tag" FROM "post_tag" WHERE "post" = %s)', [3]),
    ),
    (
        "insert",
        Insert("item", ("id", "name")),
        ('INSERT INTO "item" ("id", "name") VALUES (?, ?)', []),
        ('INSERT INTO "item" ("id", "name") VALUES (%s, %s)', []),
    ),
    (
        "insert skipping a clashing row (many-to-many links)",
        Insert("post_tag", ("post", "tag"), ignore_conflicts=True),
        ('INSERT INTO "post_tag" ("post", "tag") VALUES (?, ?) ON CONFLICT DO NOTHING', []),
        ('INSERT INTO "post_tag" ("post", "tag") VALUES (%s, %s) ON CONFLICT DO NOTHING', []),
    ),
    (
        "insert returning the new key",
        Insert("item", ("name",), returning="id"),
        ('INSERT INTO "item" ("name") VALUES (?) RETURNING `id`', []),
        ('INSERT INTO "item" ("name") VALUES (%s) RETURNING "id"', []),
    ),
    (
        "multi-row insert returning each new row's key and values",
        Insert("item", ("name", "kind"), returning=("id", "name", "kind"), rows=2),
        (
            'INSERT INTO "item" ("name", "kind") VALUES (?, ?), (?, ?) RETURNING `id`, `name`, `kind`',
            [],
        ),
        (
            'INSERT INTO "item" ("name", "kind") VALUES (%s, %s), (%s, %s) RETURNING "id", "name", "kind"',
            [],
        ),
    ),
    (
        "update with optimistic checks",
        Update("item", ("name",), KeyMatch(("id",), (("kind", False), ("note", True)))),
        ('UPDATE "item" SET "name" = ? WHERE "id" = ? AND "kind" = ? AND "note" IS NULL', []),
        ('UPDATE "item" SET "name" = %s WHERE "id" = %s AND "kind" = %s AND "note" IS NULL', []),
    ),
    (
        "delete by a composite key",
        Delete("post_tag", KeyMatch(("post", "tag"))),
        ('DELETE FROM "post_tag" WHERE "post" = ? AND "tag" = ?', []),
        ('DELETE FROM "post_tag" WHERE "post" = %s AND "tag" = %s', []),
    ),
    (
        "create index",
        CreateIndex("idx_item__kind", "item", "kind"),
        ('CREATE INDEX IF NOT EXISTS "idx_item__kind" ON "item" ("kind")', []),
        ('CREATE INDEX IF NOT EXISTS "idx_item__kind" ON "item" ("kind")', []),
    ),
    (
        "drop table",
        DropTable("item"),
        ('DROP TABLE "item"', []),
        ('DROP TABLE "item"', []),
    ),
]


@pytest.mark.parametrize(
    ("statement", "sqlite", "postgres"),
    [pytest.param(s, lite, pg, id=name) for name, s, lite, pg in STATEMENTS],
)
def test_each_statement_kind_is_spelled_by_each_dialect(statement: Any, sqlite: Any, postgres: Any) -> None:
    """A statement renders to each database's text and bound values."""
    assert spelled(statement, SQLITE) == sqlite
    assert spelled(statement, POSTGRES) == postgres


def test_identifiers_are_quoted_with_embedded_quotes_doubled() -> None:
    """A name holding the quote character stays one identifier (README: identifiers are always quoted)."""
    statement = Select('we"ird', ('co"l',))
    assert render(statement, SQLITE)[0] == 'SELECT "co""l" FROM "we""ird"'
    assert SQLITE.returning_clause("a`b") == " RETURNING `a``b`"
    assert POSTGRES.returning_clause('a"b') == ' RETURNING "a""b"'


def test_create_table_keeps_foreign_keys_inline_on_sqlite_and_adds_them_later_on_postgres() -> None:
    """SQLite declares foreign keys in CREATE TABLE; PostgreSQL adds them once every table exists."""
    table = CreateTable(
        "post_tag",
        (ColumnDef("post", "INTEGER", not_null=True), ColumnDef("tag", "INTEGER", not_null=True)),
        primary_key=("post", "tag"),
        foreign_keys=(ForeignKey("tag", "tag", "id"),),
    )
    assert table.sql(SQLITE) == (
        'CREATE TABLE IF NOT EXISTS "post_tag" (\n  "post" INTEGER NOT NULL,\n  "tag" INTEGER NOT NULL,\n'
        '  PRIMARY KEY ("post", "tag"),\n'
        '  FOREIGN KEY ("tag") REFERENCES "tag" ("id") DEFERRABLE INITIALLY DEFERRED\n)'
    )
    assert table.late_sql(SQLITE) == []
    assert "FOREIGN KEY" not in table.sql(POSTGRES)
    assert table.late_sql(POSTGRES) == [
        'DO $$ BEGIN ALTER TABLE "post_tag" ADD CONSTRAINT "fk_post_tag__tag" FOREIGN KEY ("tag") '
        'REFERENCES "tag" ("id") DEFERRABLE INITIALLY DEFERRED; '
        "EXCEPTION WHEN duplicate_object THEN NULL; END $$"
    ]


def test_foreign_key_spells_its_on_delete_action_before_deferral() -> None:
    """A foreign key with an ``on_delete`` action says ``ON DELETE <action>`` ahead of
    ``DEFERRABLE INITIALLY DEFERRED`` on both dialects; without one it says none."""
    cascade = ForeignKey("group", "group", "id", on_delete="CASCADE")
    assert cascade.sql(SQLITE) == (
        'FOREIGN KEY ("group") REFERENCES "group" ("id") ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED'
    )
    assert cascade.sql(POSTGRES) == cascade.sql(SQLITE)
    set_null = ForeignKey(("a", "b"), "pair", ("x", "y"), on_delete="SET NULL")
    assert set_null.sql(SQLITE).endswith('("x", "y") ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED')
    assert "ON DELETE" not in ForeignKey("tag", "tag", "id").sql(SQLITE)


def test_column_definitions_use_each_dialects_type_names() -> None:
    """Type names, the auto-incrementing key and column options come from the dialect."""
    auto = ColumnDef("id", None)
    assert auto.sql(SQLITE) == '"id" INTEGER PRIMARY KEY AUTOINCREMENT'
    assert auto.sql(POSTGRES) == '"id" BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY'
    name = column("name", str, max_len=20)
    assert ColumnDef("name", SQLITE.sql_type(name), unique=True).sql(SQLITE) == '"name" TEXT UNIQUE'
    assert (
        ColumnDef("name", POSTGRES.sql_type(name), not_null=True).sql(POSTGRES)
        == '"name" VARCHAR(20) NOT NULL'
    )
    assert SQLITE.sql_type(column("data", bytes)) == "BLOB"
    assert POSTGRES.sql_type(column("data", bytes)) == "BYTEA"
    assert POSTGRES.sql_type(column("data", bytes, sql_type="OID")) == "OID"


def test_transaction_statements_come_from_the_dialect() -> None:
    """BEGIN (immediate on SQLite, SERIALIZABLE or READ ONLY on PostgreSQL) and the savepoint statements."""
    assert SQLITE.begin_sql(immediate=True, serializable=False) == "BEGIN IMMEDIATE"
    assert POSTGRES.begin_sql(immediate=True, serializable=True) == "BEGIN ISOLATION LEVEL SERIALIZABLE"
    assert SQLITE.begin_sql(immediate=True, serializable=False, readonly=True) == "BEGIN"
    assert POSTGRES.begin_sql(immediate=True, serializable=False, readonly=True) == "BEGIN READ ONLY"
    for dialect in (SQLITE, POSTGRES):
        assert dialect.savepoint_sql("b") == "SAVEPOINT b"
        assert dialect.rollback_to_savepoint_sql("b") == "ROLLBACK TO SAVEPOINT b"
        assert dialect.release_savepoint_sql("b") == "RELEASE SAVEPOINT b"


def test_names_schema_queries_and_raw_sql_follow_the_dialect() -> None:
    """Default names, the column listing of check_tables and raw SQL made safe for the placeholder style."""
    assert SQLITE.normalize_name("Person") == "Person"
    assert POSTGRES.normalize_name("Person") == "person"
    assert SQLITE.table_columns_query("person") == ('PRAGMA table_info("person")', (), 1)
    sql, params, position = POSTGRES.table_columns_query("person")
    assert "information_schema.columns" in sql and params == ("person",) and position == 0
    assert SQLITE.escape_percent("a LIKE '5%'") == "a LIKE '5%'"
    assert POSTGRES.escape_percent("a LIKE '5%'") == "a LIKE '5%%'"


@pytest.mark.parametrize("dialect", [SQLITE, POSTGRES], ids=["sqlite", "postgres"])
def test_every_operator_renders_with_bound_values(dialect: Dialect) -> None:
    """Each row of the operator table renders; values are bound, never written into the text."""
    name = column("name", str)
    for op in OPERATORS:
        value: Any = ["a", "b"] if op == "in" else "zq"
        params: list[Any] = []
        text = expression_for(name, op, value).sql(dialect, params)
        assert '"name"' in text
        assert "zq" not in text and "'" not in text
        assert params, f"operator {op} bound nothing"


def test_ordering_names_its_column_and_direction() -> None:
    """``desc(attr)`` orders by the attribute's column, descending."""
    assert OrderBy(column("age", int), descending=True).key() == ("age", True)


# -- the statements run on the databases -------------------------------------------------------


def test_rendered_statements_run_on_the_database(db: Database) -> None:
    """DDL, DML and queries of the statement model run on SQLite and PostgreSQL with their results."""
    dialect = db._provider_or_fail().dialect
    int_type = dialect.sql_type(column("id", int))
    tag = CreateTable(
        "tag",
        (
            ColumnDef("id", int_type, primary_key=True),
            ColumnDef("label", dialect.sql_type(column("label", str)), unique=True),
        ),
    )
    link = CreateTable(
        "post_tag",
        (ColumnDef("post", int_type, not_null=True), ColumnDef("tag", int_type, not_null=True)),
        primary_key=("post", "tag"),
        foreign_keys=(ForeignKey("tag", "tag", "id"),),
    )
    with db_session(ddl=True):
        for sql in (
            tag.sql(dialect),
            link.sql(dialect),
            CreateIndex("idx_pt", "post_tag", "tag").sql(dialect),
        ):
            db.execute(sql, [])
        for sql in tag.late_sql(dialect) + link.late_sql(dialect):
            db.execute(sql, [])
    with db_session:
        insert = Insert("tag", ("id", "label")).sql(dialect)
        for row in ([1, "a"], [2, "b"], [3, "c"]):
            db.execute(insert, row)
        links = Insert("post_tag", ("post", "tag"), ignore_conflicts=True).sql(dialect)
        for row in ([10, 1], [10, 2], [10, 1], [11, 3]):
            db.execute(links, row)
        db.execute(
            Update("tag", ("label",), KeyMatch(("id",), (("label", False),))).sql(dialect), ["bb", 2, "b"]
        )
        db.execute(Delete("post_tag", KeyMatch(("post", "tag"))).sql(dialect), [11, 3])
        members = Select(
            "tag",
            (Col("post", "j"), Col("label", "t")),
            alias="t",
            joins=(Join("post_tag", "j", Col("id", "t"), Col("tag", "j")),),
            where=(InValues(Col("post", "j"), [10, 11]),),
        )
        assert sorted(tuple(row) for row in db.select(*render(members, dialect))) == [(10, "a"), (10, "bb")]
        many = Select("tag", ("label",), where=(InValues("id", list(range(1, 20))),), order=(("id", True),))
        assert db.select(*render(many, dialect)) == ["c", "bb", "a"]
        assert db.get(*render(Count(Select("tag", ("id",), limit=2)), dialect)) == 2
        assert db.get(*render(Select("post_tag", count=True), dialect)) == 2


# -- the layers above the SQL layer ------------------------------------------------------------


SOURCE = Path(nextorm.__file__).resolve().parent

#: spellings that belong to a dialect (or to sql.py), never to the model, session or queries
DIALECT_WORDS = (
    "ON CONFLICT",
    "SAVEPOINT",
    "RETURNING",
    "FOR UPDATE",
    "LIMIT",
    "INSERT INTO",
    "DELETE FROM",
    "UPDATE ",
    "SELECT ",
    "CREATE TABLE",
    "CREATE INDEX",
    "DROP TABLE",
    "INTEGER",
    "BIGINT",
    "BLOB",
    "BYTEA",
    "JSONB",
    "VARCHAR",
    "%s",
)


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """The string constants of a module (f-string pieces included), docstrings left out, with line numbers."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
    ]


@pytest.mark.parametrize(
    "module",
    [
        "entity.py",
        "session.py",
        "relationships.py",
        "query.py",
        "database.py",
        "attributes.py",
        "expressions.py",
        "identity.py",
        "loading.py",
        "unitofwork.py",
        "translator.py",
    ],
)
def test_model_session_and_queries_leave_sql_spelling_to_the_sql_layer(module: str) -> None:
    """No statement keyword, dialect clause, type name or identifier quote is spelled outside sql.py and providers."""
    leaks = []
    for line, literal in _string_literals(SOURCE / module):
        if any(word in literal for word in DIALECT_WORDS) or (literal and not literal.strip('"')):
            leaks.append(f"{module}:{line}: {literal}")
    assert leaks == []


@pytest.mark.parametrize("module", ["nextorm.expressions", "nextorm.sql"])
def test_expressions_and_sql_import_nothing_of_the_model(module: str) -> None:
    """Importing the expression tree or the SQL layer loads no entity, attribute, session or query module."""
    code = (
        "import importlib.util, sys, types\n"
        "spec = importlib.util.find_spec('nextorm')\n"
        "package = types.ModuleType('nextorm')\n"
        "package.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['nextorm'] = package\n"  # the package's __init__ (which imports everything) is not run
        f"import {module}\n"
        "print(sorted(m for m in sys.modules if m.startswith('nextorm')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert module in loaded
    for model in ("entity", "attributes", "session", "query", "relationships", "database"):
        assert f"'nextorm.{model}'" not in loaded


def _package_imports(path: Path) -> tuple[set[str], list[int]]:
    """The nextorm modules a module imports at its top level, and the lines of imports inside functions."""
    module = ".".join(path.relative_to(SOURCE).with_suffix("").parts)
    package = module.split(".")[:-1]
    top: set[str] = set()
    nested: list[int] = []
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package[: len(package) - node.level + 1]
        names = [node.module] if node.module else [alias.name for alias in node.names]
        if node in tree.body:
            top.update(".".join([*base, name]) for name in names)
        elif not _under_type_checking(tree, node):
            nested.append(node.lineno)
    return top, nested


def _under_type_checking(tree: ast.Module, node: ast.ImportFrom) -> bool:
    """Whether ``node`` sits in a module-level ``if TYPE_CHECKING:`` block (no import at run time)."""
    return any(
        isinstance(block, ast.If)
        and isinstance(block.test, ast.Name)
        and block.test.id == "TYPE_CHECKING"
        and node in block.body
        for block in tree.body
    )


#: modules that import inside a function on purpose: the hot path is chosen at import time, and the
#: command line loads the migrations (an optional extra) only when it is installed
DEFERRED_IMPORTS = {"_impl", "cli"}


def test_modules_import_each_other_one_way_without_deferred_imports() -> None:
    """The package's import graph has no circle, and no import hides in a function to dodge one."""
    graph: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        module = ".".join(path.relative_to(SOURCE).with_suffix("").parts)
        if module.startswith("bench"):
            continue
        top, nested = _package_imports(path)
        graph[module] = top
        if module not in DEFERRED_IMPORTS:
            assert nested == [], f"{module} imports inside a function at lines {nested}"
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        assert module not in visiting, "import circle: " + " -> ".join([*visiting, module])
        visiting.append(module)
        for imported in graph.get(module, ()):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in graph:
        visit(module)
    assert {"expressions", "sql", "loading", "identity", "unitofwork", "relationships"} <= set(graph)
