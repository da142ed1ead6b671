"""``Database``: binding to a provider, mapping entities onto tables, raw SQL."""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from .attributes import Attribute
from .debug import QueryStat
from .entity import Entity, EntityMeta
from .events import Listeners
from .exceptions import (
    BindingError,
    DBSchemaError,
    ERDiagramError,
    MappingError,
    MultipleRowsFound,
    OrmError,
    RowNotFound,
    TableIsNotEmpty,
    TransactionError,
    noted,
)
from .providers import Provider, get_provider
from .providers.dialect import Dialect
from .query import caller_namespace
from .relationships import SetAttr, reference_on_delete, resolve_columns, resolve_relations
from .schema import Schema
from .session import active_session, db_session, require_session
from .sql import (
    ColumnDef,
    CreateIndex,
    CreateTable,
    DropTable,
    ForeignKey,
    Insert,
    Select,
    complete_select,
    render,
)
from .steps import AsyncRequired, Result, Steps, run_async, run_sync

__all__ = ["AsyncDatabase", "Database"]

# ``$name``, ``$name.attr`` or ``$(expression)`` outside quoted SQL text and comments (group 1,
# passed through untouched); ``$$`` is a literal ``$``
_SQL_TOKENS = re.compile(
    r"""('(?:[^']|'')*(?:'|\Z)|"(?:[^"]|"")*(?:"|\Z)|--[^\n]*|/\*.*?(?:\*/|\Z))"""
    r"""|\$\$|\$\(([^()]*(?:\([^()]*\)[^()]*)*)\)"""
    # ``$name`` followed by attributes, subscripts and calls: ``$obj.attr``, ``$x[0]``, ``$date.today()``
    r"""|\$([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[[^\[\]]*\]|\((?:[^()]|\([^()]*\))*\))*)""",
    re.DOTALL,
)

#: raw SQL texts whose parsed ``$`` parameters a database keeps (it starts again when full)
_SQL_TEMPLATES_KEPT = 512

# the database is older than the entities: the migrations bring it up to date (docs/migrations.md)
_MIGRATE_HINT = (
    ": the database schema is older than the entities; run `nextorm migrate make` and "
    "`nextorm migrate upgrade` (see docs/migrations.md), or create_tables=True for a new database"
)


def column_index_name(attr: Any) -> str | None:
    """The name of the index the tables get on ``attr``'s column, or None when it gets none."""
    index = attr.db_index
    if index is None and attr.is_reference:
        index = True  # a foreign key is indexed unless ``index=False`` says otherwise
    if not index or attr.is_pk or attr.unique:
        return None
    return index if isinstance(index, str) else f"idx_{attr.entity._table_}__{'__'.join(attr.column_names)}"


def composite_index_name(entity: Any, key: Any) -> str:
    """The name of the index ``composite_index(...)`` declares on ``entity``'s table."""
    return f"idx_{entity._table_}__{'__'.join(c for a in key.attrs for c in a.column_names)}"


def table_composite_indexes(entity: Any) -> tuple[Any, ...]:
    """The ``composite_index(...)`` declarations of the table of root ``entity``: its own and its
    subclasses' (a hierarchy shares the table)."""
    return tuple(dict.fromkeys(key for e in (entity, *entity._subclasses_) for key in e._composite_indexes_))


def table_unique_keys(entity: Any) -> tuple[Any, ...]:
    """The unique keys of the table of root ``entity``: its own and its subclasses' (a hierarchy
    shares the table; a subclass's key holds NULLs in the other classes' rows, which no key
    compares equal)."""
    keys: dict[tuple[int, ...], Any] = {}
    for e in (entity, *entity._subclasses_):
        for key in e._unique_keys_:
            keys.setdefault(tuple(map(id, key.attrs)), key)
    return tuple(keys.values())


def join_table_index_name(attr: Any) -> str:
    """The name of the index a join table gets on its member columns (the owner's lead its primary key)."""
    return f"idx_{attr.join_table}__{'__'.join(attr.target_columns)}"


def _columns_of(attrs: Any) -> tuple[str, ...]:
    """The database columns of ``attrs``, in order."""
    return tuple(column for attr in attrs for column in attr.column_names)


def _named_columns(columns: tuple[str, ...]) -> str | tuple[str, ...]:
    """A single column by its name, several as a tuple (the form ForeignKey and CreateIndex take)."""
    return columns[0] if len(columns) == 1 else columns


class Database:
    """A database the entities declared on ``db.Entity`` live in."""

    #: whether sessions do IO through asyncio drivers (see AsyncDatabase)
    _asyncio_ = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.entities: dict[str, Any] = {}
        self.provider: Provider | None = None
        self._mapped_ = False
        self._sql_templates: dict[tuple[str, Any], tuple[str, tuple[tuple[str, str, Any], ...]]] = {}
        #: the handlers ``on()`` registered, called by the sessions using this database
        self._listeners_ = Listeners()
        self.Entity: type[Entity] = EntityMeta(
            "Entity", (Entity,), {"_database_": self, "_is_base_": True, "__slots__": ()}
        )
        self._schema: Schema | None = None
        self._on_connect: list[tuple[Callable[[Any, Any], Any], str | None]] = []
        if args or kwargs:
            self.bind(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # ``db.Person``: every entity declared on this database is an attribute of it, as in Pony
        entity = self.__dict__.get("entities", {}).get(name)
        if entity is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return entity

    def __repr__(self) -> str:
        return f"<Database {self.provider_name or 'unbound'}{' ' + self._where() if self.provider else ''}>"

    def _where(self) -> str:
        return str(getattr(self.provider, "filename", "") or getattr(self.provider, "dsn_repr", ""))

    # -- binding and mapping ---------------------------------------------------------------------

    @property
    def provider_name(self) -> str | None:
        """The bound provider's name ('sqlite', 'postgres'), or None."""
        return self.provider.name if self.provider else None

    def bind(self, *args: Any, **kwargs: Any) -> None:
        """Bind to a database: ``bind('sqlite', 'app.db', create_db=True)`` or ``bind(provider=..., ...)``."""
        if self.provider is not None:
            raise BindingError(f"Database object was already bound to {self.provider.name} provider")
        if args:
            provider, args = args[0], args[1:]
        else:
            provider = kwargs.pop("provider", None)
        if provider is None:
            raise BindingError("Database provider is not specified")
        if not isinstance(provider, str):
            raise BindingError(f"Database provider must be a name like 'sqlite', got {provider!r}")
        self.provider = get_provider(provider, *args, asyncio=self._asyncio_, **kwargs)
        self.provider.on_connect = self._connected

    # -- connection setup --------------------------------------------------------------------------

    def on_connect(
        self, func: Callable[[Any, Any], Any] | None = None, *, provider: str | None = None
    ) -> Any:
        """Register ``func(db, connection)`` to run on every new connection (optionally for one provider).

        ``@db.on_connect`` or ``@db.on_connect(provider='sqlite')``; the function gets the driver's
        connection right after it is opened (its changes are committed), before any session uses it.
        """
        if func is None:
            return lambda f: self.on_connect(f, provider=provider)
        if not callable(func):
            raise TypeError(f"on_connect() takes a function, got {func!r}")
        if provider is not None and not isinstance(provider, str):
            raise TypeError(f"on_connect() provider must be a provider name like 'sqlite', got {provider!r}")
        self._on_connect.append((func, provider))
        return func

    def _connected(self, conn: Any) -> list[Any]:
        """A new connection was opened: run the on_connect functions that apply to it; their results."""
        return [
            func(self, conn)
            for func, provider in self._on_connect
            if provider is None or provider == self.provider_name
        ]

    @property
    def last_sql(self) -> str | None:
        """The last statement this thread ran on this database (not BEGIN/COMMIT/ROLLBACK), or None."""
        return None if self.provider is None else self.provider.last_sql

    @last_sql.setter
    def last_sql(self, value: None) -> None:
        """``db.last_sql = None`` forgets this thread's last statement: reading it again tells
        whether anything ran since. Only None can be assigned."""
        if value is not None:
            raise ValueError(f"db.last_sql can only be reset to None, got {value!r}")
        if self.provider is not None:
            self.provider.forget_last_sql()

    @property
    def local_stats(self) -> dict[str | None, QueryStat]:
        """This thread's query statistics: ``{sql: QueryStat}``, the ``None`` key the total of all.

        Every statement sent to the database counts (with its time), not BEGIN/COMMIT/ROLLBACK.
        ``merge_local_stats()`` moves them into ``global_stats`` and starts them anew.
        """
        return {None: QueryStat(None)} if self.provider is None else self.provider.stats.local()

    @property
    def global_stats(self) -> dict[str | None, QueryStat]:
        """A copy of the statistics every thread merged with ``merge_local_stats()``."""
        return {} if self.provider is None else self.provider.stats.merged()

    def merge_local_stats(self) -> None:
        """Add this thread's query statistics to ``global_stats`` and clear them."""
        if self.provider is not None:
            self.provider.stats.merge_local()

    @property
    def schema(self) -> Schema | None:
        """The tables the mapping gives this database (None until ``generate_mapping``)."""
        if not self._mapped_:
            return None
        if self._schema is None:
            self._schema = self._build_schema()
        return self._schema

    def on(self, event: str) -> Any:
        """``@db.on('before_commit')``: call ``handler(session)`` at that point of every transaction on this database.

        Events: ``after_begin``, ``before_flush``, ``after_flush``, ``before_commit``,
        ``after_commit``, ``after_rollback`` (see the README's "Session events").
        """
        return self._listeners_.on(event, self)

    def _provider_or_fail(self) -> Provider:
        if self.provider is None:
            raise MappingError("Database object is not bound with a provider yet")
        return self.provider

    def _require_mapping_(self, entity: Any) -> None:
        if not self._mapped_:
            raise ERDiagramError(f"Mapping is not generated for entity {entity.__name__!r}")

    def generate_mapping(self, create_tables: bool = False, check_tables: bool = True) -> None:
        """Finish the entity declarations; create missing tables and check existing ones."""
        self._provider_or_fail()
        if self._mapped_:
            raise BindingError("Mapping was already generated")
        tables: dict[str, str] = {}
        for entity in self._root_entities():
            other = tables.setdefault(entity._table_, entity.__name__)
            if other != entity.__name__:
                raise ERDiagramError(
                    f"Entities {other} and {entity.__name__} are mapped to the same table {entity._table_!r}"
                )
        resolve_relations(self)
        provider = self._provider_or_fail()
        for entity in self.entities.values():
            if not entity._table_given_:
                entity._table_ = provider.dialect.normalize_name(entity.__name__)
            for attr in entity._attrs_:
                if attr.entity is not entity:
                    continue  # inherited: mapped with the class that declares it
                if not attr.is_column:
                    attr.column = None  # the other side of a one-to-one holds the key
                elif not attr.column_given:
                    attr.column = provider.dialect.normalize_name(attr.name)
                if not attr.is_reference:
                    provider.adapt(attr)
            seen: set[str] = set()
            for attr in entity._attrs_:
                if attr.is_column:
                    if attr.column in seen:
                        raise DBSchemaError(
                            f"Column {attr.column!r} already exists in table {entity._table_!r}"
                        )
                    seen.add(attr.column)
            for collection in entity._collections_:
                if collection.is_m2m and not (collection.table or collection.reverse.table):
                    collection.join_table = provider.dialect.normalize_name(collection.join_table)
        resolve_columns(self, provider.dialect.normalize_name)
        for entity in self.entities.values():
            entity._finish_mapping_()
            for collection in entity._collections_:
                if collection.is_m2m:
                    collection.table = collection.join_table  # the name chosen, given or not
        self._check_join_tables()
        self._mapped_ = True
        if create_tables:
            self.create_tables()
        if check_tables:
            self.check_tables()

    def _root_entities(self) -> list[Any]:
        """The entities with a table of their own (a subclass lives in its root's table)."""
        return [e for e in self.entities.values() if e._root_ is e]

    def _tables_referrers_first(self) -> list[str]:
        """The entities' tables, each before the tables it refers to (a cycle's tables in reverse
        declaration order): dropping a table deletes its rows, and on SQLite a row whose foreign
        key has an ``ON DELETE`` action cannot be deleted once the table it refers to is gone."""
        remaining = [e._table_ for e in reversed(self._root_entities())]
        refers_to: dict[str, set[str]] = {table: set() for table in remaining}
        for entity in self.entities.values():
            for attr in entity._references_:
                if attr.is_column and attr.py_type._table_ != entity._table_:
                    refers_to[entity._table_].add(attr.py_type._table_)
        ordered: list[str] = []
        while remaining:
            referred = {target for table in remaining for target in refers_to[table]}
            free = [table for table in remaining if table not in referred] or remaining[:1]
            ordered += free
            remaining = [table for table in remaining if table not in free]
        return ordered

    def _join_tables(self) -> list[Any]:
        """The primary side of every many-to-many relationship (one per join table)."""
        return [c for e in self.entities.values() for c in e._collections_ if c.is_m2m and c.m2m_primary]

    def _check_join_tables(self) -> None:
        tables = {e._table_ for e in self._root_entities()}
        for attr in self._join_tables():
            if attr.join_table in tables:
                raise noted(
                    ERDiagramError(f'Table name "{attr.join_table}" is already in use'),
                    f"Join table {attr.join_table!r} of {attr!r} has the name of an entity table",
                )
            tables.add(attr.join_table)

    def _blocking(self, steps: Any, awaitable: str) -> Any:
        """Run schema steps: in the current session, or in a ddl session of its own.

        A session of its own does blocking IO even for an AsyncDatabase, so mapping works at startup.
        """
        if active_session() is None:
            with db_session(ddl=True):
                require_session().cache_for(self).is_async = False
                return run_sync(steps, awaitable)
        return run_sync(steps, awaitable)

    async def _awaited(self, steps: Any) -> Any:
        """Run schema steps awaited: in the current session, or in a ddl session of its own."""
        if active_session() is None:
            async with db_session(ddl=True):
                return await run_async(steps)
        return await run_async(steps)

    def _ddl_steps(self, statements: list[str]) -> Steps[None]:
        cache = require_session().cache_for(self)
        yield cache, "begin", ()
        for sql in statements:
            yield cache, "write", (sql, ())

    def _tables(self, dialect: Dialect) -> list[tuple[CreateTable, list[CreateIndex]]]:
        """Every table of the mapping (entities', then join tables) with its indexes."""
        tables = [self._entity_table(entity, dialect) for entity in self._root_entities()]
        for attr in self._join_tables():
            table, index = self._join_table(attr, dialect)
            tables.append((table, [index]))
        return tables

    def _build_schema(self) -> Schema:
        return Schema(self._tables(self._provider_or_fail().dialect), self._provider_or_fail().dialect)

    def _create_tables_steps(self) -> Steps[None]:
        self._require_mapped_db()
        dialect = self._provider_or_fail().dialect
        tables = self._tables(dialect)
        statements: list[str] = []
        for table, indexes in tables:
            statements += [table.sql(dialect), *(index.sql(dialect) for index in indexes)]
        for table, _ in tables:
            statements += table.late_sql(dialect)
        yield from self._ddl_steps(statements)

    def create_tables(self) -> None:
        """Create the tables (and indexes) of every entity that has none yet."""
        self._blocking(self._create_tables_steps(), "await db.acreate_tables()")

    async def acreate_tables(self) -> None:
        """Awaitable ``create_tables()``."""
        await self._awaited(self._create_tables_steps())

    def _entity_table(self, entity: Any, dialect: Dialect) -> tuple[CreateTable, list[CreateIndex]]:
        """The table of ``entity`` and the indexes of its indexed columns."""
        columns = []
        foreign_keys = []
        single_pk = len(entity._pk_columns_) == 1
        for attr in entity._loaded_columns_:
            if attr.auto:
                columns.append(ColumnDef(attr.column, None))
                continue
            wide = attr.width > 1
            for column, leaf in zip(attr.column_names, attr.leaves):
                columns.append(
                    ColumnDef(
                        column,
                        dialect.reference_sql_type(attr)
                        if attr.is_reference and not wide
                        else dialect.sql_type(leaf),
                        primary_key=single_pk and attr.is_pk,
                        # a subclass's column is empty in the rows of the other classes
                        not_null=not attr.nullable and attr.entity is entity,
                        unique=attr.unique and not attr.is_pk and not wide,
                        default=attr.sql_default,
                    )
                )
            if attr.is_reference:
                target = attr.py_type
                foreign_keys.append(
                    ForeignKey(
                        attr.column if not wide else attr.column_names,
                        target._table_,
                        target._pk_columns_[0] if not wide else target._pk_columns_,
                        attr.fk_name,
                        reference_on_delete(attr),
                    )
                )
        unique = [
            _columns_of(key.attrs) for key in table_unique_keys(entity) if len(_columns_of(key.attrs)) > 1
        ]
        table = CreateTable(
            entity._table_,
            tuple(columns),
            primary_key=entity._pk_columns_ if not single_pk else (),
            unique=tuple(unique),
            foreign_keys=tuple(foreign_keys),
        )
        indexes = []
        for attr in entity._loaded_columns_:
            name = column_index_name(attr)
            if name is not None:
                indexes.append(
                    CreateIndex(name, entity._table_, attr.column if attr.width == 1 else attr.column_names)
                )
        for key in table_composite_indexes(entity):
            indexes.append(
                CreateIndex(composite_index_name(entity, key), entity._table_, _columns_of(key.attrs))
            )
        return table, indexes

    def _join_table(self, attr: Any, dialect: Dialect) -> tuple[CreateTable, CreateIndex]:
        """The join table of many-to-many ``attr`` and the index of its second column."""
        owner, target = attr.entity, attr.py_type
        own, other = attr.owner_columns, attr.target_columns
        columns = [
            ColumnDef(column, dialect.sql_type(leaf), not_null=True)
            for names, entity in ((own, owner), (other, target))
            for column, (_, leaf) in zip(names, entity._pk_leaves_)
        ]
        table = CreateTable(
            attr.join_table,
            tuple(columns),
            primary_key=own + other,
            foreign_keys=(
                ForeignKey(_named_columns(own), owner._table_, _named_columns(owner._pk_columns_)),
                ForeignKey(_named_columns(other), target._table_, _named_columns(target._pk_columns_)),
            ),
        )
        return table, CreateIndex(join_table_index_name(attr), attr.join_table, _named_columns(other))

    def _table_columns_steps(self, table: str) -> Steps[list[str] | None]:
        cache = require_session().cache_for(self)
        sql, params, position = self._provider_or_fail().dialect.table_columns_query(table)
        rows = (yield cache, "query", (sql, params)).rows
        return [row[position] for row in rows] or None

    def _check_tables_steps(self) -> Steps[None]:
        self._require_mapped_db()
        for entity in self._root_entities():
            columns = yield from self._table_columns_steps(entity._table_)
            if columns is None:
                raise DBSchemaError(
                    f"Table {entity._table_!r} of entity {entity.__name__} does not exist{_MIGRATE_HINT}"
                )
            for attr in entity._loaded_columns_:
                for column in attr.column_names:
                    if column not in columns:
                        raise DBSchemaError(
                            f"Column {column!r} of {attr.qualname} does not exist in table "
                            f"{entity._table_!r}{_MIGRATE_HINT}"
                        )
        for attr in self._join_tables():
            columns = yield from self._table_columns_steps(attr.join_table)
            missing = [c for c in (*attr.owner_columns, *attr.target_columns) if c not in (columns or ())]
            if missing:
                where = f"Column {missing[0]!r} of" if columns is not None else "Table"
                raise DBSchemaError(
                    f"{where} join table {attr.join_table!r} of {attr.qualname} does not exist{_MIGRATE_HINT}"
                )

    def check_tables(self) -> None:
        """Raise DBSchemaError when a table or column of an entity is missing."""
        self._blocking(self._check_tables_steps(), "await db.acheck_tables()")

    async def acheck_tables(self) -> None:
        """Awaitable ``check_tables()``."""
        await self._awaited(self._check_tables_steps())

    def _require_mapped_db(self) -> None:
        if not self._mapped_:
            raise MappingError("No mapping was generated for the database")

    def _drop_table_steps(self, table_name: str, if_exists: bool, with_all_data: bool) -> Steps[None]:
        provider = self._provider_or_fail()
        cache = require_session().cache_for(self)
        if (yield from self._table_columns_steps(table_name)) is None:
            if if_exists:
                return
            raise MappingError(f"Table {table_name!r} does not exist")
        if not with_all_data:
            rows = (
                yield cache, "query", render(Select(table_name, one=True, limit=1), provider.dialect)
            ).rows
            if rows:
                raise TableIsNotEmpty(
                    f"Cannot drop table {table_name!r} because it is not empty. "
                    "Specify option with_all_data=True if you want to drop table with all data"
                )
        yield from self._ddl_steps([DropTable(table_name).sql(provider.dialect)])

    def drop_table(self, table_name: str, if_exists: bool = False, with_all_data: bool = False) -> None:
        """Drop one table; refuses a table holding rows unless ``with_all_data``."""
        self._blocking(
            self._drop_table_steps(table_name, if_exists, with_all_data), "await db.adrop_table(...)"
        )

    async def adrop_table(
        self, table_name: str, if_exists: bool = False, with_all_data: bool = False
    ) -> None:
        """Awaitable ``drop_table()``."""
        await self._awaited(self._drop_table_steps(table_name, if_exists, with_all_data))

    def _drop_all_steps(self, with_all_data: bool) -> Steps[None]:
        self._require_mapped_db()
        tables = [a.join_table for a in self._join_tables()] + self._tables_referrers_first()
        for table in tables:
            yield from self._drop_table_steps(table, True, with_all_data)

    def drop_all_tables(self, with_all_data: bool = False) -> None:
        """Drop the tables of every entity (refusing non-empty ones unless ``with_all_data``)."""
        self._blocking(self._drop_all_steps(with_all_data), "await db.adrop_all_tables(...)")

    async def adrop_all_tables(self, with_all_data: bool = False) -> None:
        """Awaitable ``drop_all_tables()``."""
        await self._awaited(self._drop_all_steps(with_all_data))

    def disconnect(self) -> None:
        """Close the idle pooled connections (PostgreSQL also closes those in use as their sessions end)."""
        if active_session() is not None and self in require_session().caches:
            raise TransactionError("disconnect() cannot be called inside of db_session")
        if self.provider is not None:
            self.provider.disconnect()

    # -- raw SQL ---------------------------------------------------------------------------------

    def _prepare_sql_(
        self, sql: str, params: Any, namespace: tuple[dict[str, Any], dict[str, Any]]
    ) -> tuple[str, Any]:
        """Replace ``$name``/``$(expr)`` by bound parameters; a list/tuple ``params`` is passed as is."""
        if isinstance(params, (list, tuple)):
            return sql, params
        if params is not None and not isinstance(params, dict):
            raise TypeError(f"SQL parameters must be a dict, a list or a tuple, got {params!r}")
        text, sources = self._sql_template_(sql)
        args: list[Any] = []
        globals_, locals_ = namespace
        for source, root, code in sources:
            if params is not None:
                if root not in params:
                    raise OrmError(f"Parameter ${source} of the SQL is not in the given params")
                scope: tuple[Any, Any] = ({"__builtins__": {}}, params)
            else:
                scope = (globals_, locals_)
            try:
                value = eval(code, *scope)
            except Exception as exc:
                raise OrmError(f"`{source}` raises {type(exc).__name__}: {exc}") from exc
            if isinstance(value, Entity):
                value = value.get_pk()
            args.append(value)
        return text, args

    def _sql_template_(self, sql: str) -> tuple[str, tuple[tuple[str, str, Any], ...]]:
        """The SQL text with the dialect's parameter marks, and each ``$`` source's text, root name
        and compiled code, in order; parsed once per text (a bounded cache of the database)."""
        dialect = self._provider_or_fail().dialect
        templates = self._sql_templates
        template = templates.get((sql, dialect))
        if template is not None:
            return template
        sources: list[tuple[str, str, Any]] = []

        def replace(match: re.Match[str]) -> str:
            quoted, expression, name = match.groups()
            if quoted is not None:
                # ``$$`` is a dollar in quoted text too, as Pony reads it; a comment is left as it is
                return quoted if quoted[0] in "-/" else quoted.replace("$$", "$")
            if expression is None and name is None:
                return "$"
            source = expression if expression is not None else name
            root = re.match(r"\w+", source)
            try:
                code = compile(source, "<sql parameter>", "eval")
            except SyntaxError as exc:
                raise OrmError(f"`{source}` raises SyntaxError: {exc}") from exc
            sources.append((source, root.group(0) if root else source, code))
            return dialect.param  # type: ignore[no-any-return]

        pieces = []
        position = 0
        for match in _SQL_TOKENS.finditer(sql):
            pieces.append(dialect.escape_percent(sql[position : match.start()]))
            pieces.append(dialect.escape_percent(replace(match)) if match.group(1) else replace(match))
            position = match.end()
        pieces.append(dialect.escape_percent(sql[position:]))
        if len(templates) >= _SQL_TEMPLATES_KEPT:
            templates.clear()
        template = templates[sql, dialect] = ("".join(pieces), tuple(sources))
        return template

    def _generation_(self) -> tuple[Any, int, bool]:
        """The current session's state of this database; it changes with every flush, raw write or pending change."""
        cache = require_session().cache_for(self)
        return cache, cache.generation, bool(cache.dirty or cache.m2m)

    def _raw_steps_(self, sql: str, params: Any, namespace: Any, write: bool = False) -> Steps[Result]:
        sql, args = self._prepare_sql_(sql, params, namespace)
        cache = require_session().cache_for(self)
        yield from cache.flush_steps()
        if write and not (cache.readonly and _is_read(sql)):
            cache.generation += 1
            return (yield cache, "write", (sql, args))  # type: ignore[no-any-return]
        return (yield cache, "query", (sql, args))  # type: ignore[no-any-return]

    def _scalar_steps_(self, sql: str, params: Any) -> Steps[Any]:
        cache = require_session().cache_for(self)
        yield from cache.flush_steps()
        row = (yield cache, "query", (sql, params)).fetchone()
        return None if row is None else row[0]

    def execute(self, sql: str, params: Any = None) -> Result:
        """Run raw SQL in the current session's transaction; returns a cursor-like result."""
        return run_sync(
            self._raw_steps_(sql, params, caller_namespace(), write=True), "await db.aexecute(...)"
        )

    async def aexecute(self, sql: str, params: Any = None) -> Result:
        """Awaitable ``execute()``."""
        return await run_async(self._raw_steps_(sql, params, caller_namespace(), write=True))

    def select(self, sql: str, params: Any = None) -> list[Any]:
        """Rows of a raw SELECT (``SELECT`` may be left out): values for one column, named tuples for several."""
        steps = self._raw_steps_(complete_select(sql), params, caller_namespace())
        return _rows(run_sync(steps, "await db.aselect(...)"))

    async def aselect(self, sql: str, params: Any = None) -> list[Any]:
        """Awaitable ``select()``."""
        return _rows(await run_async(self._raw_steps_(complete_select(sql), params, caller_namespace())))

    def get(self, sql: str, params: Any = None) -> Any:
        """The only row of a raw SELECT; RowNotFound when there is none, MultipleRowsFound when several."""
        steps = self._raw_steps_(complete_select(sql), params, caller_namespace())
        return _one(_rows(run_sync(steps, "await db.aget(...)")))

    async def aget(self, sql: str, params: Any = None) -> Any:
        """Awaitable ``get()``."""
        return _one(
            _rows(await run_async(self._raw_steps_(complete_select(sql), params, caller_namespace())))
        )

    def exists(self, sql: str, params: Any = None) -> bool:
        """Whether a raw SELECT returns any row."""
        steps = self._raw_steps_(complete_select(sql), params, caller_namespace())
        return run_sync(steps, "await db.aexists(...)").fetchone() is not None

    async def aexists(self, sql: str, params: Any = None) -> bool:
        """Awaitable ``exists()``."""
        steps = self._raw_steps_(complete_select(sql), params, caller_namespace())
        return (await run_async(steps)).fetchone() is not None

    def _insert_steps(self, table: Any, returning: str | None, values: dict[str, Any]) -> Steps[Any]:
        provider = self._provider_or_fail()
        if isinstance(table, EntityMeta) and table._database_ is self:
            self._require_mapping_(table)
            columns = tuple(_column_of(table, name) for name in values)
            if returning is not None:
                returning = _column_of(table, returning)
            elif table._auto_pk_ is not None:
                returning = table._auto_pk_.column  # the new key, on every database
            table_name = table._table_
        elif isinstance(table, str):
            columns, table_name = tuple(values), table
        elif (
            isinstance(table, SetAttr) and getattr(table, "is_m2m", False) and table.entity._database_ is self
        ):
            columns, table_name = tuple(values), table.join_table  # the join table of a many-to-many
        elif isinstance(table, (Attribute, SetAttr)):
            raise TypeError(
                f"Attribute {table!r} is not a many-to-many Set and doesn't have a table of its own"
            )
        else:
            raise TypeError(f"db.insert() takes a table name or an entity of this database, got {table!r}")
        row = [value.get_pk() if isinstance(value, Entity) else value for value in values.values()]
        cache = require_session().cache_for(self)
        yield from cache.flush_steps()
        sql = Insert(table_name, columns).sql(provider.dialect)
        return (yield cache, "insert_key", (sql, row, returning))

    def insert(self, table: Any, returning: str | None = None, **values: Any) -> Any:
        """INSERT one row of raw values into a table, an entity's table (attribute names may be used) or
        a many-to-many Set's join table; returns the new row's ``returning`` column (by default the
        entity's auto key, or SQLite's rowid)."""
        return run_sync(self._insert_steps(table, returning, values), "await db.ainsert(...)")

    async def ainsert(self, table: Any, returning: str | None = None, **values: Any) -> Any:
        """Awaitable ``insert()``."""
        return await run_async(self._insert_steps(table, returning, values))

    def get_connection(self) -> Any:
        """The DB-API connection of the current session (with autoflush done)."""
        cache = require_session().cache_for(self)
        if cache.is_async:
            raise AsyncRequired(
                "get_connection() would open a blocking connection: use await db.aget_connection()"
            )
        cache.flush()
        return cache.connection()

    async def aget_connection(self) -> Any:
        """The asyncio driver's connection of the current session (with autoflush done)."""
        cache = require_session().cache_for(self)
        await run_async(cache.flush_steps())
        return await cache.aconnection() if cache.is_async else cache.connection()

    def _own_cache(self) -> Any:
        session = active_session()
        return None if session is None else session.caches.get(self)

    def _flush_steps(self) -> Steps[None]:
        cache = self._own_cache()
        if cache is not None:
            yield from cache.flush_steps()

    def _commit_steps(self) -> Steps[None]:
        cache = self._own_cache()
        if cache is not None:
            yield from cache.session.commit_steps([cache])

    def _rollback_steps(self) -> Steps[None]:
        cache = self._own_cache()
        if cache is not None:
            yield from cache.session.rollback_steps([cache])

    def flush(self) -> None:
        """Send this database's pending changes in the current session."""
        run_sync(self._flush_steps(), "await db.aflush()")

    async def aflush(self) -> None:
        """Awaitable ``flush()``."""
        await run_async(self._flush_steps())

    def commit(self) -> None:
        """Commit this database's transaction in the current session."""
        run_sync(self._commit_steps(), "await db.acommit()")

    async def acommit(self) -> None:
        """Awaitable ``commit()``."""
        await run_async(self._commit_steps())

    def rollback(self) -> None:
        """Roll back this database in the current session (its objects are detached)."""
        run_sync(self._rollback_steps(), "await db.arollback()")

    async def arollback(self) -> None:
        """Awaitable ``rollback()``."""
        await run_async(self._rollback_steps())


#: the first word of statements that only read (a readonly session runs them from db.execute)
_READ_STATEMENT = re.compile(r"\s*\(*\s*(SELECT|VALUES|TABLE|SHOW)\b", re.IGNORECASE)


def _is_read(sql: str) -> bool:
    """Whether ``sql`` is a plain read; a WITH query may hold a write, so it is not one."""
    return _READ_STATEMENT.match(sql) is not None


def _column_of(entity: Any, name: str) -> str:
    """The column of ``entity``'s attribute ``name``; a name that is no attribute is taken as a column."""
    attr = entity._attrs_by_name_.get(name)
    return name if attr is None or not attr.is_column else str(attr.column)


def _one(rows: list[Any]) -> Any:
    if not rows:
        raise RowNotFound("The query returned no rows")
    if len(rows) > 1:
        raise MultipleRowsFound(f"The query returned {len(rows)} rows instead of one")
    return rows[0]


class AsyncDatabase(Database):
    """A Database whose sessions do IO through asyncio drivers: aiosqlite, psycopg's AsyncConnection.

    Work with it in ``async with db_session`` (or ``@db_session`` coroutines) through the awaitable
    twins: ``await Person.aget(...)``, ``await q.afetch()``, ``await obj.awaitable_attrs.name``,
    ``await acommit()``. Calls that would need IO without ``await`` raise AsyncRequired naming the
    twin to use. ``generate_mapping`` works as for Database (its DDL uses a blocking connection);
    ``await db.acreate_tables()`` is the awaitable alternative.
    """

    _asyncio_ = True

    async def adisconnect(self) -> None:
        """Close the idle asyncio connections."""
        if self.provider is not None:
            await self.provider.adisconnect()


def _rows(cursor: Any) -> list[Any]:
    rows = cursor.fetchall()
    description = cursor.description
    if description is None:
        return rows
    if len(description) == 1:
        return [row[0] for row in rows]
    return list(map(_row_type(tuple(d[0] for d in description))._make, rows))


@lru_cache(maxsize=256)
def _row_type(names: tuple[str, ...]) -> Any:
    """The named tuple class of rows with columns ``names`` (made once: making one costs ~100 µs)."""
    try:
        return namedtuple("Row", names)  # type: ignore[misc]
    except ValueError:
        return namedtuple("Row", names, rename=True)  # type: ignore[misc]
