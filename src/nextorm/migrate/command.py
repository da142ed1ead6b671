"""``nextorm migrate``: the commands, run through Alembic's against a nextorm ``Database``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tomllib
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.operations import ops
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from ..database import Database
from ..exceptions import OrmError
from .environment import DB_KEY, create_engine, load_database
from .rewrite import BASELINE_KEY, NOTES_KEY, RENAMES_KEY, SKIP_EMPTY_KEY
from .schema import build_metadata

__all__ = ["add_arguments", "run"]

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
    init = commands.add_parser("init", help="create the migrations directory")
    init.add_argument(
        "--baseline",
        action="store_true",
        help="adopt a database made by generate_mapping(create_tables=True): a first revision, stamped",
    )
    make = commands.add_parser("make", help="write a migration from the difference of entities and database")
    make.add_argument("-m", "--message", required=True, help="what the migration does")
    make.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="mark a rename: table.old_column=new_column or old_table=new_table (repeatable)",
    )
    make.add_argument("--empty", action="store_true", help="write a migration with no operations, to fill in")
    upgrade = commands.add_parser("upgrade", help="apply migrations (up to head by default)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = commands.add_parser("downgrade", help="revert migrations down to a revision (-1: the last one)")
    downgrade.add_argument("revision")
    commands.add_parser("status", help="the database's revision, the pending migrations, unmigrated changes")
    sql = commands.add_parser("sql", help="print the SQL of migrations instead of running it")
    sql.add_argument("revision", nargs="?", default="head", help="a revision or a from:to range")


def run(args: argparse.Namespace) -> int:
    """Run one ``nextorm migrate`` command; returns the exit status."""
    logging.basicConfig(format="%(message)s")
    logging.getLogger("alembic").setLevel(logging.INFO)
    try:
        settings = _settings()
        db_path = args.db or os.environ.get("NEXTORM_DB") or settings.get("db")
        if not db_path:
            raise CommandError(
                "Name the Database to migrate: --db module:attribute, NEXTORM_DB, or db in [tool.nextorm]"
            )
        directory = args.dir or settings.get("directory") or "migrations"
        db = load_database(db_path)
        config = _config(directory, db_path, db)
        handler = _COMMANDS[args.migrate_command]
        handler(config, db, args)
    except (OrmError, CommandError, ValueError) as exc:
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


def _config(directory: str, db_path: str, db: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", os.path.abspath(directory))
    config.set_main_option("path_separator", "os")
    config.set_main_option(DB_KEY, db_path)
    config.attributes[DB_KEY] = db
    return config


def _require_init(config: Config) -> ScriptDirectory:
    location = config.get_main_option("script_location") or ""
    if not os.path.exists(os.path.join(location, "env.py")):
        raise CommandError(f"No migrations directory at {location}: run `nextorm migrate init` first")
    return ScriptDirectory.from_config(config)


def _init(config: Config, db: Database, args: argparse.Namespace) -> None:
    location = config.get_main_option("script_location") or ""
    if os.path.exists(os.path.join(location, "env.py")):
        raise CommandError(f"{location} is already a migrations directory")
    os.makedirs(os.path.join(location, "versions"), exist_ok=True)
    with open(os.path.join(location, "env.py"), "w") as f:
        f.write(_ENV_PY)
    with open(os.path.join(location, "script.py.mako"), "w") as f:
        f.write(_SCRIPT_MAKO)
    print(f"Created migrations directory {location}")
    if args.baseline:
        _baseline(config, db)


def _baseline(config: Config, db: Database) -> None:
    """A first revision creating every table, stamped on a database that already has them."""
    differences, existing = _differences(db)
    if existing and differences:
        raise CommandError(
            "The database differs from the entities, so it cannot be adopted as it is: "
            + "; ".join(_describe(d) for d in differences[:5])
        )
    config.attributes[BASELINE_KEY] = True
    config.set_main_option("revision_environment", "true")
    script = command.revision(config, message="baseline")
    print(f"Wrote {_path(script)}")
    if existing:
        command.stamp(config, "head")
        print("Stamped the database at the baseline revision: it is under migrations now")
    else:
        print("The database has no tables yet: `nextorm migrate upgrade` creates them")


def _make(config: Config, db: Database, args: argparse.Namespace) -> None:
    _require_init(config)
    config.attributes[RENAMES_KEY] = list(args.rename)
    config.attributes[SKIP_EMPTY_KEY] = not args.empty
    if args.empty:
        config.set_main_option("revision_environment", "true")
    script = command.revision(config, message=args.message, autogenerate=not args.empty)
    if script is None:
        print("No changes: the database matches the entities (--empty writes a migration to fill in)")
        return
    print(f"Wrote {_path(script)}: review it, then run `nextorm migrate upgrade`")
    for note in config.attributes.get(NOTES_KEY, []):
        print("NOTE: " + note.replace("\n", "\n      "))


def _path(script: Any) -> str:
    scripts = script if isinstance(script, list) else [script]
    return ", ".join(s.path for s in scripts if s is not None)


def _upgrade(config: Config, db: Database, args: argparse.Namespace) -> None:
    _require_init(config)
    command.upgrade(config, args.revision)


def _downgrade(config: Config, db: Database, args: argparse.Namespace) -> None:
    _require_init(config)
    command.downgrade(config, args.revision)


def _sql(config: Config, db: Database, args: argparse.Namespace) -> None:
    _require_init(config)
    command.upgrade(config, args.revision, sql=True)


def _status(config: Config, db: Database, args: argparse.Namespace) -> None:
    scripts = _require_init(config)
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()
    heads = scripts.get_heads()
    print(f"Database revision: {', '.join(current) or 'none (not under migrations yet)'}")
    print(f"Head revision:     {', '.join(heads) or 'none (no migrations yet)'}")
    pending = []
    for revision in scripts.iterate_revisions(heads, current or "base"):
        if revision.revision not in current:
            pending.append(revision)
    for revision in reversed(pending):
        print(f"  pending: {revision.revision} {revision.doc}")
    if not pending:
        differences, _ = _differences(db)
        if differences:
            print(f"The entities differ from the database ({len(differences)} changes): run `nextorm migrate make`")
            for difference in differences:
                print(f"  {_describe(difference)}")
        else:
            print("The database is up to date with the entities")


def _differences(db: Database) -> tuple[list[Any], bool]:
    """Alembic's differences from the database to the entities, and whether the database has tables."""
    engine = create_engine(db)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            existing = bool(context.dialect.get_table_names(connection))
            return compare_metadata(context, build_metadata(db)), existing
    finally:
        engine.dispose()


def _describe(difference: Any) -> str:
    if isinstance(difference, list):
        return "; ".join(_describe(d) for d in difference)
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


_COMMANDS = {
    "init": _init,
    "make": _make,
    "upgrade": _upgrade,
    "downgrade": _downgrade,
    "status": _status,
    "sql": _sql,
}
