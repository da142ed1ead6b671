"""What nextorm changes in the operations Alembic's autogenerate finds, before the file is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.config import Config
from alembic.operations import ops

from ..database import Database
from ..exceptions import MappingError
from .schema import NAMING_CONVENTION

__all__ = ["BASELINE_KEY", "NOTES_KEY", "RENAMES_KEY", "SKIP_EMPTY_KEY", "Note", "rewrite_directives"]

#: ``Config.attributes`` keys: the renames the user marked (``old=new`` strings); whether an empty
#: migration is unwanted (``make`` refuses one unless ``--empty``); what ``make`` reports back
RENAMES_KEY = "nextorm_renames"
SKIP_EMPTY_KEY = "nextorm_skip_empty"
NOTES_KEY = "nextorm_notes"
#: set by ``init --baseline``: the revision creates every table of the entities
BASELINE_KEY = "nextorm_baseline"


class Note(ops.MigrateOperation):
    """A comment in the generated file: something the reviewer of the migration must look at."""

    def __init__(self, text: str) -> None:
        self.text = text

    def reverse(self) -> Note:
        return self


class _AlterColumnUsing(ops.AlterColumnOp):
    """An ALTER COLUMN ... TYPE that tells PostgreSQL how to convert the values already stored."""


class _RenameTable(ops.RenameTableOp):
    """A table rename the user marked (autogenerate itself never finds one)."""


class _NamedBatch(ops.ModifyTableOps):
    """A SQLite table rebuild that names the constraints CREATE TABLE left unnamed, to drop them."""


@renderers.dispatch_for(Note)
def _render_note(autogen_context: Any, op: Note) -> list[str]:
    return [f"# NOTE: {line}" if line else "#" for line in op.text.splitlines()]


_render_alter_column = renderers.dispatch(ops.AlterColumnOp("t", "c"))
_render_modify_table = renderers.dispatch(ops.ModifyTableOps("t", []))


@renderers.dispatch_for(_AlterColumnUsing)
def _render_alter_column_using(autogen_context: Any, op: _AlterColumnUsing) -> str:
    text: str = _render_alter_column(autogen_context, op)
    lines = text.splitlines()
    indent = lines[1][: len(lines[1]) - len(lines[1].lstrip())] if len(lines) > 1 else " "
    return f"{text[:-1]},\n{indent}postgresql_using={op.kw['postgresql_using']!r})"


@renderers.dispatch_for(_RenameTable)
def _render_rename_table(autogen_context: Any, op: _RenameTable) -> str:
    return f"op.rename_table({op.table_name!r}, {op.new_table_name!r})"


@renderers.dispatch_for(_NamedBatch)
def _render_named_batch(autogen_context: Any, op: _NamedBatch) -> list[str]:
    lines: list[str] = list(_render_modify_table(autogen_context, op))
    if lines:
        lines[0] = lines[0].replace(
            ") as batch_op:", f", naming_convention={NAMING_CONVENTION!r}) as batch_op:"
        )
    return lines


def rewrite_directives(db: Database, config: Config, metadata: sa.MetaData) -> Callable[..., None]:
    """The ``process_revision_directives`` hook: renames, fill values, conversions, notes."""

    def process(context: Any, revision: Any, directives: list[Any]) -> None:
        script = directives[0]
        if config.attributes.get(BASELINE_KEY):
            _create_everything(script, metadata)
            return
        if config.attributes.get(SKIP_EMPTY_KEY) and script.upgrade_ops.is_empty():
            directives[:] = []
            return
        notes: list[str] = config.attributes.setdefault(NOTES_KEY, [])
        dialect = context.dialect
        renames = _parse_renames(config.attributes.get(RENAMES_KEY, ()))
        for container, forward in ((script.upgrade_ops, True), (script.downgrade_ops, False)):
            pairs = renames if forward else [(new, old) for old, new in renames]
            _apply_renames(container, pairs)
            _fill_new_required_columns(db, container, dialect, notes if forward else [])
            if dialect.name == "postgresql":
                _convert_types(container, dialect)
            if dialect.name == "sqlite" and context.connection is not None:
                _drop_unnamed_uniques(container, context.connection, metadata, forward)
            _name_new_constraints(container)
            _name_unnamed_drops(container, dialect.name == "sqlite")
            _order_tables(container)
            if forward:
                _note_possible_renames(container, notes)

    return process


def _create_everything(script: Any, metadata: sa.MetaData) -> None:
    """The baseline: every table and index, created in the order their foreign keys need."""
    forward: list[Any] = []
    for table in metadata.sorted_tables:
        forward.append(ops.CreateTableOp.from_table(table))
        forward.extend(
            ops.CreateIndexOp.from_index(index) for index in sorted(table.indexes, key=lambda i: str(i.name))
        )
    script.upgrade_ops.ops[:] = forward
    script.downgrade_ops.ops[:] = [op.reverse() for op in reversed(forward)]


# -- renames ---------------------------------------------------------------------------------------


def _parse_renames(marks: Any) -> list[tuple[str, str]]:
    """``table.old=new`` (a column) or ``old=new`` (a table) into (old, new) pairs of dotted names."""
    pairs = []
    for mark in marks:
        old, sep, new = mark.partition("=")
        if not sep or not old or not new:
            raise MappingError(f"A rename is written old=new (table) or table.old=new (column), got {mark!r}")
        if "." in old and "." not in new:
            new = f"{old.rpartition('.')[0]}.{new}"
        pairs.append((old, new))
    return pairs


def _apply_renames(container: Any, pairs: list[tuple[str, str]]) -> None:
    for old, new in pairs:
        if "." in old:
            table, _, old_column = old.rpartition(".")
            _rename_column(container, table, old_column, new.rpartition(".")[2])
        else:
            _rename_table(container, old, new)


def _rename_column(container: Any, table: str, old: str, new: str) -> None:
    for table_ops in container.ops:
        if not isinstance(table_ops, ops.ModifyTableOps) or table_ops.table_name != table:
            continue
        drop = next(
            (o for o in table_ops.ops if isinstance(o, ops.DropColumnOp) and o.column_name == old), None
        )
        add = next(
            (o for o in table_ops.ops if isinstance(o, ops.AddColumnOp) and o.column.name == new), None
        )
        if drop is None or add is None:
            continue
        before = drop.to_column()
        after = add.column
        alter = ops.AlterColumnOp(
            table,
            old,
            schema=table_ops.schema,
            modify_name=new,
            existing_type=before.type,
            existing_nullable=before.nullable,
            modify_type=None if _same_type(before.type, after.type) else after.type,
            modify_nullable=None if before.nullable == after.nullable else after.nullable,
        )
        position = table_ops.ops.index(drop)
        table_ops.ops = [o for o in table_ops.ops if o is not drop and o is not add]
        table_ops.ops.insert(position, alter)
        return
    raise MappingError(f"Column {table}.{old} is not dropped and {table}.{new} not added: nothing to rename")


def _same_type(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)


def _rename_table(container: Any, old: str, new: str) -> None:
    drop = next((o for o in container.ops if isinstance(o, ops.DropTableOp) and o.table_name == old), None)
    create = next(
        (o for o in container.ops if isinstance(o, ops.CreateTableOp) and o.table_name == new), None
    )
    if drop is None or create is None:
        raise MappingError(f"Table {old} is not dropped and {new} not created: nothing to rename")
    # the indexes keep their names: the renamed table has them already
    container.ops = [
        o
        for o in container.ops
        if o is not drop
        and o is not create
        and not (isinstance(o, (ops.CreateIndexOp, ops.DropIndexOp)) and o.table_name in (old, new))
    ]
    # foreign keys follow a renamed table: the ones autogenerate moves from old to new are left alone
    for table_ops in container.ops:
        if isinstance(table_ops, ops.ModifyTableOps):
            moved = _moved_foreign_keys(table_ops, old, new)
            table_ops.ops = [o for o in table_ops.ops if o not in moved]
    container.ops[:] = [o for o in container.ops if not (isinstance(o, ops.ModifyTableOps) and o.is_empty())]
    container.ops.insert(0, _RenameTable(old, new))


def _moved_foreign_keys(table_ops: Any, old: str, new: str) -> list[Any]:
    """Pairs of a dropped foreign key to ``old`` and a created one to ``new`` on the same columns."""
    drops = {}
    for op in table_ops.ops:
        if isinstance(op, ops.DropConstraintOp) and op.constraint_type == "foreignkey":
            constraint: Any = op.to_constraint()
            if constraint.elements[0].target_fullname.split(".")[0] == old:
                drops[tuple(c.name for c in constraint.columns)] = op
    moved = []
    for op in table_ops.ops:
        if (
            isinstance(op, ops.CreateForeignKeyOp)
            and op.referent_table == new
            and tuple(op.local_cols) in drops
        ):
            moved += [op, drops.pop(tuple(op.local_cols))]
    return moved


def _is_join_table(op: Any) -> bool:
    """Whether a table is a many-to-many join table: a key made of references (never renamed alone)."""
    key = op.to_table().primary_key.columns
    return len(key) > 1 and all(column.foreign_keys for column in key)


def _note_possible_renames(container: Any, notes: list[str]) -> None:
    dropped = [
        o.table_name for o in container.ops if isinstance(o, ops.DropTableOp) and not _is_join_table(o)
    ]
    created = [
        o.table_name for o in container.ops if isinstance(o, ops.CreateTableOp) and not _is_join_table(o)
    ]
    if dropped and created:
        text = (
            f"tables {', '.join(dropped)} are dropped and {', '.join(created)} created. Autogenerate cannot tell\n"
            "a rename from a drop and a create: a dropped table loses its rows. If a table was renamed,\n"
            f"delete this file and run: nextorm migrate make -m ... --rename {dropped[0]}={created[0]}"
        )
        container.ops.insert(0, Note(text))
        notes.append(text)
    for table_ops in list(container.ops):
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        dropped = [o.column_name for o in table_ops.ops if isinstance(o, ops.DropColumnOp)]
        added = [o.column.name for o in table_ops.ops if isinstance(o, ops.AddColumnOp)]
        if dropped and added:
            table = table_ops.table_name
            text = (
                f"in table {table}, columns {', '.join(dropped)} are dropped and {', '.join(added)} added.\n"
                "Autogenerate cannot tell a rename from a drop and an add: a dropped column loses its values.\n"
                "If a column was renamed, delete this file and run:\n"
                f"nextorm migrate make -m ... --rename {table}.{dropped[0]}={added[0]}"
            )
            container.ops.insert(container.ops.index(table_ops), Note(text))
            notes.append(text)


# -- values ----------------------------------------------------------------------------------------


def _fill_new_required_columns(db: Database, container: Any, dialect: Any, notes: list[str]) -> None:
    """A NOT NULL column added to a table gets a database default, so the rows already there get a value."""
    for table_ops in list(container.ops):
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        for op in table_ops.ops:
            if (
                not isinstance(op, ops.AddColumnOp)
                or op.column.nullable
                or op.column.server_default is not None
            ):
                continue
            attr = _attribute(db, table_ops.table_name, op.column.name)
            if _is_reference(attr, table_ops, op.column.name):
                text = (
                    f"{table_ops.table_name}.{op.column.name} is a required reference: the rows already in the\n"
                    "table need one. Give the column a server_default naming an existing row, or fill it in\n"
                    "three steps (add it optional, op.execute an UPDATE, make it NOT NULL); as it is, the\n"
                    "migration fails (and changes nothing) when the table has rows."
                )
                container.ops.insert(container.ops.index(table_ops), Note(text))
                notes.append(text)
                continue
            value = _fill_value(attr, op.column.type)
            op.column.server_default = sa.schema.DefaultClause(value)
            text = (
                f"{table_ops.table_name}.{op.column.name} is required: the rows already in the table get "
                f"{value!r}\n(the server_default below); change it to the value they should have."
            )
            container.ops.insert(container.ops.index(table_ops), Note(text))
            notes.append(text)


def _is_reference(attr: Any, table_ops: Any, column: str) -> bool:
    if attr is not None:
        return bool(attr.is_reference)
    return any(isinstance(o, ops.CreateForeignKeyOp) and column in o.local_cols for o in table_ops.ops)


def _attribute(db: Database, table: str, column: str) -> Any:
    for entity in db.entities.values():
        if entity._table_ == table:
            return next((a for a in entity._columns_ if a.column == column), None)
    return None


_ZERO = {
    "bool": "0",
    "int": "0",
    "float": "0",
    "Decimal": "0",
    "str": "",
    "bytes": "",
    "date": "1970-01-01",
    "datetime": "1970-01-01 00:00:00",
    "time": "00:00:00",
    "timedelta": "0",
    "UUID": "00000000-0000-0000-0000-000000000000",
    "dict": "null",
}


def _fill_value(attr: Any, column_type: Any) -> str:
    """The attribute's default as the database stores it, or the zero value of the column's type."""
    if attr is not None and attr.default is not None and not callable(attr.default):
        value = attr.default
        if attr.to_db is not None:
            value = attr.to_db(value)
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)
    try:
        python_type = column_type.python_type.__name__
    except NotImplementedError:
        python_type = "str"
    return _ZERO.get(python_type, "")


def _convert_types(container: Any, dialect: Any) -> None:
    """PostgreSQL converts values to a changed column type with USING column::type."""
    for table_ops in container.ops:
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        for i, op in enumerate(table_ops.ops):
            if isinstance(op, ops.AlterColumnOp) and op.modify_type is not None:
                spelled = op.modify_type.compile(dialect=dialect)
                using = _AlterColumnUsing(
                    op.table_name,
                    op.column_name,
                    schema=op.schema,
                    existing_type=op.existing_type,
                    existing_server_default=op.existing_server_default,
                    existing_nullable=op.existing_nullable,
                    existing_comment=op.existing_comment,
                    modify_nullable=op.modify_nullable,
                    modify_comment=op.modify_comment,
                    modify_server_default=op.modify_server_default,
                    modify_name=op.modify_name,
                    modify_type=op.modify_type,
                    postgresql_using=f'"{op.modify_name or op.column_name}"::{spelled}',
                )
                table_ops.ops[i] = using


# -- SQLite constraints and drop order ---------------------------------------------------------------


def unnamed_unique_keys(connection: sa.Connection, metadata: sa.MetaData) -> list[tuple[str, list[str]]]:
    """The unnamed unique keys of SQLite tables that the entities no longer have: (table, columns).

    Alembic compares unique keys by name, and CREATE TABLE leaves them unnamed on SQLite, so a
    unique key dropped from an entity would otherwise go unnoticed.
    """
    inspector = sa.inspect(connection)
    found = []
    for table in metadata.tables.values():
        if not inspector.has_table(table.name):
            continue
        wanted = {
            tuple(c.name for c in key.columns)
            for key in table.constraints
            if isinstance(key, sa.UniqueConstraint)
        }
        for key in inspector.get_unique_constraints(table.name):
            if not key["name"] and tuple(key["column_names"]) not in wanted:
                found.append((table.name, list(key["column_names"])))
    return found


def _drop_unnamed_uniques(
    container: Any, connection: sa.Connection, metadata: sa.MetaData, forward: bool
) -> None:
    for table, columns in unnamed_unique_keys(connection, metadata):
        name = _convention_name("uq", table, columns)
        table_ops = next(
            (o for o in container.ops if isinstance(o, ops.ModifyTableOps) and o.table_name == table), None
        )
        if table_ops is None:
            table_ops = ops.ModifyTableOps(table, [])
            container.ops.append(table_ops)
        if forward:
            table_ops.ops.append(ops.DropConstraintOp(name, table, type_="unique"))
        else:
            table_ops.ops.append(ops.CreateUniqueConstraintOp(name, table, columns))


def _name_new_constraints(container: Any) -> None:
    """A unique key a migration adds gets nextorm's name for it (SQLite's rebuild needs one)."""
    for table_ops in container.ops:
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        for op in table_ops.ops:
            if isinstance(op, ops.CreateUniqueConstraintOp) and not op.constraint_name:
                op.constraint_name = _convention_name("uq", table_ops.table_name, list(op.columns))


def _convention_name(kind: str, table: str, columns: list[str]) -> str:
    return NAMING_CONVENTION[kind] % {
        "table_name": table,
        "column_0_name": columns[0],
        "column_0_N_name": "_".join(columns),
    }


def _name_unnamed_drops(container: Any, rebuild: bool) -> None:
    """An unnamed constraint is dropped by nextorm's name for it.

    That is the name a migration created it with; a constraint CREATE TABLE left unnamed on SQLite
    gets it in the table rebuild (``rebuild``), which names unnamed constraints by the same rule.
    """
    for i, table_ops in enumerate(container.ops):
        if not isinstance(table_ops, ops.ModifyTableOps):
            continue
        drops = [o for o in table_ops.ops if isinstance(o, ops.DropConstraintOp)]
        for op in drops:
            if not op.constraint_name:
                constraint: Any = op.to_constraint()
                columns = [c.name for c in constraint.columns]
                kind = "fk" if op.constraint_type == "foreignkey" else "uq"
                op.constraint_name = _convention_name(kind, table_ops.table_name, columns)
        if drops and rebuild:
            container.ops[i] = _NamedBatch(table_ops.table_name, table_ops.ops, schema=table_ops.schema)


def _order_tables(container: Any) -> None:
    """Tables are created after the tables they refer to and dropped before them, whatever order
    autogenerate found them in (a join table and its entities, on PostgreSQL's enforced keys)."""
    dropped = {o.table_name for o in container.ops if isinstance(o, ops.DropTableOp)}
    created = {o.table_name for o in container.ops if isinstance(o, ops.CreateTableOp)}
    # DROP TABLE drops the table's indexes; a new table's indexes are made once every table exists
    indexes = [
        o
        for o in container.ops
        if isinstance(o, (ops.CreateIndexOp, ops.ModifyTableOps)) and o.table_name in created
    ]
    container.ops = [
        o
        for o in container.ops
        if not (isinstance(o, (ops.DropIndexOp, ops.ModifyTableOps)) and o.table_name in dropped)
        and not any(o is index for index in indexes)
    ]
    container.ops += indexes
    _reorder(container, ops.DropTableOp, referred_first=False)
    _reorder(container, ops.CreateTableOp, referred_first=True)


def _reorder(container: Any, kind: type, referred_first: bool) -> None:
    positions = [i for i, o in enumerate(container.ops) if isinstance(o, kind)]
    tables = [container.ops[i] for i in positions]
    names = {o.table_name for o in tables}
    refers_to = {
        o.table_name: {fk.target_fullname.split(".")[0] for fk in o.to_table().foreign_keys}
        & names - {o.table_name}
        for o in tables
    }
    ordered: list[Any] = []
    while tables:
        if referred_first:  # one referring to no table still waiting
            waiting = {o.table_name for o in tables}
            ready = next((o for o in tables if not refers_to[o.table_name] & waiting), tables[0])
        else:  # one no table still waiting refers to
            ready = next(
                (o for o in tables if not any(o.table_name in refers_to[t.table_name] for t in tables)),
                tables[0],
            )
        ordered.append(ready)
        tables.remove(ready)
    for i, op in zip(positions, ordered):
        container.ops[i] = op
