"""What a migrations directory's ``env.py`` runs: Alembic configured for a nextorm ``Database``."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic import context
from alembic.config import Config
from sqlalchemy.pool import NullPool

from ..database import Database
from ..exceptions import BindingError, DBSchemaError, MappingError, TransactionIntegrityError
from .rewrite import rewrite_directives
from .schema import build_metadata, dialect_of

__all__ = ["create_engine", "load_database", "run_environment"]

#: the key of ``Config.attributes`` holding the Database, and of the main option naming it
DB_KEY = "nextorm_db"


def load_database(path: str) -> Database:
    """The ``Database`` named by ``module:attribute``, imported from the current directory, mapped."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise BindingError(
            f"The database must be named as module:attribute (like myapp.models:db), got {path!r}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BindingError(f"Cannot import module {module_name!r} of database {path!r}: {exc}") from exc
    except DBSchemaError as exc:
        raise BindingError(
            f"Importing {module_name!r} checked the tables of a database that is not migrated yet ({exc}); "
            "call generate_mapping in the application's startup, not in the module --db names"
        ) from exc
    db = getattr(module, attribute, None)
    if not isinstance(db, Database):
        raise BindingError(f"{path!r} is not a nextorm Database (got {type(db).__name__})")
    if db.provider is None:
        raise BindingError(f"Database {path!r} is not bound: call db.bind(...) in {module_name}")
    if not db._mapped_:
        # the tables are the migrations' business: neither created nor checked here
        db.generate_mapping(create_tables=False, check_tables=False)
    return db


def create_engine(db: Database) -> sa.Engine:
    """A SQLAlchemy engine on the database ``db`` is bound to, for Alembic's use only."""
    provider = db._provider_or_fail()
    if provider.name == "sqlite":
        if provider.memory:  # type: ignore[attr-defined]
            raise BindingError("Migrations need a database file, not an in-memory SQLite database")
        # the provider's own connections: whatever it sets up on them (collations) tables may need
        engine = sa.create_engine("sqlite://", creator=provider.connect, poolclass=NullPool)

        @sa.event.listens_for(engine, "connect")
        def _prepare(dbapi_connection: Any, record: Any) -> None:
            # pysqlite opens transactions lazily and never around DDL; nextorm wants a migration's
            # statements, table rebuilds included, to apply as a whole or not at all
            dbapi_connection.isolation_level = None
            # a table rebuild drops a table others refer to: keys are checked after each step instead
            dbapi_connection.execute("PRAGMA foreign_keys = OFF")

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            connection.exec_driver_sql("BEGIN")

        return engine
    if provider.name == "postgres":
        import psycopg

        dsn = provider.dsn  # type: ignore[attr-defined]
        # sessions' connections are autocommit (nextorm sends BEGIN itself); SQLAlchemy's are not
        options = {k: v for k, v in provider.connect_options.items() if k != "autocommit"}  # type: ignore[attr-defined]
        return sa.create_engine(
            "postgresql+psycopg://", creator=lambda: psycopg.connect(dsn, **options), poolclass=NullPool
        )
    raise MappingError(f"Migrations do not support the {provider.name!r} provider")


def _database(config: Config) -> Database:
    db = config.attributes.get(DB_KEY)
    if db is None:
        path = config.get_main_option(DB_KEY)
        if not path:
            raise BindingError("No database to migrate: pass --db module:attribute")
        db = config.attributes[DB_KEY] = load_database(path)
    return db  # type: ignore[no-any-return]


def run_environment() -> None:
    """Run the Alembic command in progress against the nextorm Database of its configuration."""
    config = context.config
    db = _database(config)
    metadata = build_metadata(db)
    options: dict[str, Any] = {
        "target_metadata": metadata,
        "compare_type": True,
        "render_as_batch": db.provider_name == "sqlite",
        "process_revision_directives": rewrite_directives(db, config, metadata),
    }
    if context.is_offline_mode():
        context.configure(dialect_name=dialect_of(db).name, literal_binds=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(db)
    try:
        with engine.connect() as connection, _keep_autoincrement(connection):
            with connection.begin():  # its own transaction: Alembic must begin the migrations' ones
                guard = _RebuildGuard(connection)
            context.configure(
                connection=connection,
                transaction_per_migration=True,
                transactional_ddl=True,
                on_version_apply=guard.after_step,
                **options,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


# -- SQLite table rebuilds -------------------------------------------------------------------------

_TEMP_PREFIX = "_alembic_tmp_"


@contextmanager
def _keep_autoincrement(connection: sa.Connection) -> Iterator[None]:
    """Tables SQLite's batch mode rebuilds keep AUTOINCREMENT (reflection cannot see it)."""
    if connection.dialect.name != "sqlite":
        yield
        return

    def before_create(table: sa.Table, bind: Any, **kw: Any) -> None:
        if not table.name.startswith(_TEMP_PREFIX) or len(table.primary_key.columns) != 1:
            return
        sql = bind.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
            (table.name[len(_TEMP_PREFIX) :],),
        ).scalar()
        if sql and "AUTOINCREMENT" in sql.upper():
            table.dialect_options["sqlite"]["autoincrement"] = True

    sa.event.listen(sa.Table, "before_create", before_create)
    try:
        yield
    finally:
        sa.event.remove(sa.Table, "before_create", before_create)


class _RebuildGuard:
    """After each migration step on SQLite: puts back the key sequences table rebuilds reset, checks
    the foreign keys rebuilds do not enforce.

    A rebuilt table's sequence restarts at its highest remaining key, so the keys of deleted rows
    would be given out again: each sequence is set back to at least its value before the step.
    """

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"
        self.sequences = self._read() if self.sqlite else {}

    def _read(self) -> dict[str, int]:
        if not self._has_sequences():
            return {}
        return dict(self.connection.exec_driver_sql("SELECT name, seq FROM sqlite_sequence").all())  # type: ignore[arg-type]

    def _has_sequences(self) -> bool:
        return bool(
            self.connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
            ).first()
        )

    def after_step(self, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        """Restore the sequences of the tables that still exist; remember them for the next step.

        Foreign keys are not enforced while SQLite tables are rebuilt, so they are checked here:
        a step that leaves a row referring to a missing row fails, and its transaction rolls back.
        """
        if not self.sqlite:
            return
        run = self.connection.exec_driver_sql
        broken = run("PRAGMA foreign_key_check").first()
        if broken is not None:
            table, rowid, target, _ = broken
            raise TransactionIntegrityError(
                f"Migration {step.up_revision_id or step.down_revision_ids}: row {rowid} of table {table!r} "
                f"refers to a row of {target!r} that does not exist; the migration was rolled back"
            )
        if self.sequences and self._has_sequences():
            for name, seq in self.sequences.items():
                exists = run(
                    "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
                ).scalar()
                if not exists or "AUTOINCREMENT" not in exists.upper():
                    continue
                current = run("SELECT seq FROM sqlite_sequence WHERE name = ?", (name,)).first()
                if current is None:
                    run("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (name, seq))
                elif current[0] < seq:
                    run("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (seq, name))
        self.sequences = self._read()
