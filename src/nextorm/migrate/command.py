"""``nextorm migrate``: the commands, run through Alembic's against a nextorm ``Database``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from ..database import Database
from ..exceptions import BindingError, DBSchemaError, MappingError, OrmError
from .environment import DB_KEY, create_engine, load_database
from .rewrite import BASELINE_KEY, NOTES_KEY, RENAMES_KEY, SKIP_EMPTY_KEY, unnamed_unique_keys
from .schema import build_metadata

__all__ = [
    "MigrationStatus",
    "add_arguments",
    "describe",
    "differences",
    "downgrade",
    "init",
    "make",
    "run",
    "sql",
    "status",
    "upgrade",
]

_log = logging.getLogger("nextorm.migrate")

_ENV_PY = '''"""Alembic's environment for this project's nextorm migrations: run by `nextorm migrate`."""

from nextorm.migrate.environment import run_environment

run_environment()
'''

_SCRIPT_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Made by `nextorm migrate make`: review it before `nextorm migrate upgrade`, and read every NOTE.
Autogenerate cannot tell a rename from a drop and an add (see docs/migrations.md).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    """Bring the schema to this revision."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Take the schema back to the previous revision."""
    ${downgrades if downgrades else "pass"}
'''


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options and subcommands of ``nextorm migrate``."""
    parser.add_argument(
        "--db",
        help="the Database as module:attribute (default: $NEXTORM_DB, or db in [tool.nextorm] of pyproject.toml)",
    )
    parser.add_argument(
        "--dir",
        help="the migrations directory (default: directory in [tool.nextorm] of pyproject.toml, or migrations)",
    )
    commands = parser.add_subparsers(dest="migrate_command", required=True, metavar="COMMAND")
    init_parser = commands.add_parser("init", help="create the migrations directory")
    init_parser.add_argument(
        "--baseline",
        action="store_true",
        help="adopt a database made by generate_mapping(create_tables=True): a first revision, stamped",
    )
    make_parser = commands.add_parser(
        "make", help="write a migration from the difference of entities and database"
    )
    make_parser.add_argument("-m", "--message", required=True, help="what the migration does")
    make_parser.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="mark a rename: table.old_column=new_column or old_table=new_table (repeatable)",
    )
    make_parser.add_argument(
        "--empty", action="store_true", help="write a migration with no operations, to fill in"
    )
    upgrade_parser = commands.add_parser("upgrade", help="apply migrations (up to head by default)")
    upgrade_parser.add_argument("revision", nargs="?", default="head")
    downgrade_parser = commands.add_parser(
        "downgrade", help="revert migrations down to a revision (-1: the last one)"
    )
    downgrade_parser.add_argument("revision")
    commands.add_parser("status", help="the database's revision, the pending migrations, unmigrated changes")
    sql_parser = commands.add_parser("sql", help="print the SQL of migrations instead of running it")
    sql_parser.add_argument("revision", nargs="?", default="head", help="a revision or a from:to range")


def run(args: argparse.Namespace) -> int:
    """Run one ``nextorm migrate`` command; returns the exit status."""
    logging.basicConfig(format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    _log.setLevel(logging.INFO)
    try:
        settings = _settings()
        db_path = args.db or os.environ.get("NEXTORM_DB") or settings.get("db")
        if not db_path:
            raise BindingError(
                "Name the Database to migrate: --db module:attribute, NEXTORM_DB, or db in [tool.nextorm]"
            )
        directory = args.dir or settings.get("directory") or "migrations"
        db = load_database(db_path)
        _COMMANDS[args.migrate_command](db, directory, args)
    except OrmError as exc:
        print(f"nextorm migrate: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _settings() -> dict[str, Any]:
    """``[tool.nextorm]`` of the current directory's pyproject.toml."""
    try:
        with open("pyproject.toml", "rb") as f:
            return dict(tomllib.load(f).get("tool", {}).get("nextorm", {}))
    except FileNotFoundError:
        return {}


@dataclass
class MigrationStatus:
    """Where a database stands: its revisions, the migrations not applied, unmigrated entity changes."""

    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: list[tuple[str, str]] = field(default_factory=list)
    #: Alembic's differences from the database to the entities
    differences: list[Any] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        """Whether every migration is applied and the database matches the entities."""
        return not self.pending and not self.differences


def init(db: Database, directory: str = "migrations", baseline: bool = False) -> None:
    """Create the migrations directory; ``baseline`` adopts a database made by ``create_tables``."""
    location = os.path.abspath(directory)
    if os.path.exists(os.path.join(location, "env.py")):
        raise MappingError(f"{location} is already a migrations directory")
    os.makedirs(os.path.join(location, "versions"), exist_ok=True)
    with open(os.path.join(location, "env.py"), "w") as f:
        f.write(_ENV_PY)
    with open(os.path.join(location, "script.py.mako"), "w") as f:
        f.write(_SCRIPT_MAKO)
    _log.info("Created migrations directory %s", location)
    if baseline:
        _baseline(db, _config(db, directory))


def make(
    db: Database,
    message: str,
    directory: str = "migrations",
    renames: Sequence[str] = (),
    empty: bool = False,
) -> str | None:
    """Write a migration from the entities' difference to the database; its path, or None if none."""
    config = _config(db, directory)
    _require_init(config)
    config.attributes[RENAMES_KEY] = list(renames)
    config.attributes[SKIP_EMPTY_KEY] = not empty
    if empty:
        config.set_main_option("revision_environment", "true")
    script = _run(db, command.revision, config, message=message, autogenerate=not empty)
    if not script or script == [None]:
        _log.info("No changes: the database matches the entities (--empty writes a migration to fill in)")
        return None
    path = _path(script)
    _log.info("Wrote %s: review it, then run `nextorm migrate upgrade`", path)
    for note in config.attributes.get(NOTES_KEY, []):
        _log.warning("NOTE: %s", note.replace("\n", "\n      "))
    return path


def upgrade(db: Database, revision: str = "head", directory: str = "migrations") -> None:
    """Apply the migrations up to ``revision``, each in a transaction of its own."""
    config = _config(db, directory)
    _require_init(config)
    _run(db, command.upgrade, config, revision)


def downgrade(db: Database, revision: str, directory: str = "migrations") -> None:
    """Revert the migrations down to ``revision`` (``-1``: the last one; ``base``: all)."""
    config = _config(db, directory)
    _require_init(config)
    _run(db, command.downgrade, config, revision)


def sql(db: Database, revision: str = "head", directory: str = "migrations") -> None:
    """Print the SQL of the migrations up to ``revision`` (or a ``from:to`` range) instead of running it."""
    config = _config(db, directory)
    _require_init(config)
    _run(db, command.upgrade, config, revision, sql=True)


def status(db: Database, directory: str = "migrations") -> MigrationStatus:
    """The database's revision, the pending migrations, and how the database differs from the entities."""
    scripts = _require_init(_config(db, directory))
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            current = tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    heads = tuple(scripts.get_heads())
    pending = [
        (r.revision, r.doc)
        for r in scripts.iterate_revisions(heads, current or "base")
        if r.revision not in current
    ]
    return MigrationStatus(current, heads, list(reversed(pending)), differences(db))


def _run(db: Database, action: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an Alembic command: a failed statement raises nextorm's exception for it, a refusal
    (a database behind its migrations, an unknown revision) MappingError."""
    try:
        return action(*args, **kwargs)
    except CommandError as exc:
        hint = " Run `nextorm migrate upgrade` first." if "not up to date" in str(exc) else ""
        raise MappingError(f"{exc}{hint}") from exc
    except sa.exc.DBAPIError as exc:
        error = db._provider_or_fail().translate_error(exc.orig or exc)
        raise type(error)(f"The migration failed and was rolled back: {error}") from exc


def _config(db: Database, directory: str) -> Config:
    config = Config(stdout=sys.stdout)
    config.set_main_option("script_location", os.path.abspath(directory))
    config.set_main_option("path_separator", "os")
    config.attributes[DB_KEY] = db
    return config


def _require_init(config: Config) -> ScriptDirectory:
    location = config.get_main_option("script_location") or ""
    if not os.path.exists(os.path.join(location, "env.py")):
        raise MappingError(f"No migrations directory at {location}: run `nextorm migrate init` first")
    return ScriptDirectory.from_config(config)


def _baseline(db: Database, config: Config) -> None:
    """A first revision creating every table, stamped on a database that already has them."""
    differences, existing = _differences(db)
    if existing and differences:
        raise DBSchemaError(
            "The database differs from the entities, so it cannot be adopted as it is: "
            + "; ".join(describe(d) for d in differences[:5])
        )
    config.attributes[BASELINE_KEY] = True
    config.set_main_option("revision_environment", "true")
    _log.info("Wrote %s", _path(_run(db, command.revision, config, message="baseline")))
    if existing:
        _run(db, command.stamp, config, "head")
        _log.info("Stamped the database at the baseline revision: it is under migrations now")
    else:
        _log.info("The database has no tables yet: `nextorm migrate upgrade` creates them")


def _path(script: Any) -> str:
    scripts = script if isinstance(script, list) else [script]
    return ", ".join(s.path for s in scripts if s is not None)


def differences(db: Database) -> list[Any]:
    """Alembic's differences from the database to the entities: empty when they match."""
    return _differences(db)[0]


def _differences(db: Database) -> tuple[list[Any], bool]:
    """Alembic's differences from the database to the entities, and whether any entity table exists."""
    metadata = build_metadata(db)
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            existing = bool(set(sa.inspect(connection).get_table_names()) & set(metadata.tables))
            found = compare_metadata(context, metadata)
            if connection.dialect.name == "sqlite":
                for table, columns in unnamed_unique_keys(connection, metadata):
                    key = sa.UniqueConstraint(*columns)
                    sa.Table(table, sa.MetaData(), *(sa.Column(c) for c in columns), key)
                    found.append(("remove_constraint", key))
            return found, existing
    finally:
        engine.dispose()


def describe(difference: Any) -> str:
    """One of Alembic's differences in a line: what changes, on which table and column."""
    if isinstance(difference, list):
        return "; ".join(describe(d) for d in difference)
    kind, *rest = difference
    if kind.endswith("_table"):
        return f"{kind} {rest[0].name}"
    if kind.endswith("_column"):
        return f"{kind} {rest[1]}.{rest[2].name}"
    if kind.startswith("modify_"):
        return f"{kind} {rest[1]}.{rest[2]}"
    if kind.endswith("_index"):
        return f"{kind} {rest[0].name} on {rest[0].table.name}"
    return f"{kind} on {getattr(getattr(rest[0], 'table', None), 'name', '?')}"


def _cli_init(db: Database, directory: str, args: argparse.Namespace) -> None:
    init(db, directory, baseline=args.baseline)


def _cli_make(db: Database, directory: str, args: argparse.Namespace) -> None:
    make(db, args.message, directory, renames=args.rename, empty=args.empty)


def _cli_upgrade(db: Database, directory: str, args: argparse.Namespace) -> None:
    upgrade(db, args.revision, directory)


def _cli_downgrade(db: Database, directory: str, args: argparse.Namespace) -> None:
    downgrade(db, args.revision, directory)


def _cli_sql(db: Database, directory: str, args: argparse.Namespace) -> None:
    sql(db, args.revision, directory)


def _cli_status(db: Database, directory: str, args: argparse.Namespace) -> None:
    result = status(db, directory)
    print(f"Database revision: {', '.join(result.current) or 'none (not under migrations yet)'}")
    print(f"Head revision:     {', '.join(result.heads) or 'none (no migrations yet)'}")
    for revision, doc in result.pending:
        print(f"  pending: {revision} {doc}")
    if result.pending:
        print("Run `nextorm migrate upgrade` to apply the pending migrations")
    elif result.differences:
        print(
            f"The entities differ from the database ({len(result.differences)} changes): run `nextorm migrate make`"
        )
        for difference in result.differences:
            print(f"  {describe(difference)}")
    elif not result.pending:
        print("The database is up to date with the entities")


_COMMANDS = {
    "init": _cli_init,
    "make": _cli_make,
    "upgrade": _cli_upgrade,
    "downgrade": _cli_downgrade,
    "status": _cli_status,
    "sql": _cli_sql,
}
