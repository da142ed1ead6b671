"""Worker of the differential test: runs operation programs against the nextorm this interpreter loaded.

Started by ``tests/test_differential.py`` as ``python -m differential_worker compiled|pure`` with
``NEXTORM_NO_EXTENSIONS`` unset or ``1``. It prints one handshake line saying which hot path loaded
(and exits with status 2 when ``compiled`` was asked for and the pure twin loaded), then for every
line on stdin, a JSON program (a list of operations, see ``OPERATIONS``), runs it in a db_session on
a fresh SQLite file and prints one JSON trace line: per operation its result, the SQL nextorm logged
while it ran, and the table's rows as a raw sqlite3 connection sees them after commit, rollback and
end of session, and after another client's statements (``external``).

Objects that operations return are kept in a list of *handles*; an operation refers to an object by
an index taken modulo the number of handles, and an object is reported as ``["obj", repr(obj),
same_as]`` where ``same_as`` is the first earlier handle that is the very same object (or -1).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sqlite3
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import nextorm
import nextorm.entity
from nextorm import (
    Database,
    Optional,
    PrimaryKey,
    Required,
    commit,
    db_session,
    flush,
    rollback,
    set_sql_debug,
)

#: the columns of the ``item`` table, in declaration order
COLUMNS = ("id", "name", "note", "qty", "score", "code")


def declare(db: Database) -> type:
    """The entity every program works on: one of each kind of column, one unique column."""

    class Item(db.Entity):
        _table_ = "item"
        id = PrimaryKey(int, auto=True)
        name = Required(str, max_len=8)
        note = Optional(str, max_len=8)
        qty = Required(int, default=0)
        score = Required(float, default=0.0)
        code = Optional(str, max_len=8, unique=True)

    return Item


class SqlCapture(logging.Handler):
    """Collects the messages of the ``nextorm.sql`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # the statement and its parameters: the timing line that ends the message differs run to run
        self.messages.append(record.getMessage().rpartition("\n-- ")[0])

    def take(self) -> list[str]:
        """The messages logged since the last call."""
        messages, self.messages = self.messages, []
        return messages


def table_rows(path: str) -> list[list[Any]]:
    """The rows of ``item`` in the database file, read by a connection of its own."""
    conn = sqlite3.connect(path, timeout=5)
    try:
        return [list(row) for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM item ORDER BY id")]
    finally:
        conn.close()


class Run:
    """One program's execution: the entity, the handles and the operations."""

    def __init__(self, entity: type, path: str) -> None:
        self.Item = entity
        self.path = path
        self.handles: list[Any] = []

    def obj(self, obj: Any) -> list[Any]:
        """``obj`` as a result, remembered as a new handle."""
        same_as = next((i for i, h in enumerate(self.handles) if h is obj), -1)
        self.handles.append(obj)
        return ["obj", repr(obj), same_as]

    def objs(self, objects: list[Any]) -> list[Any]:
        """A list of objects as a result, each remembered as a new handle."""
        known = list(self.handles)
        result = [[repr(o), next((i for i, h in enumerate(known) if h is o), -1)] for o in objects]
        self.handles.extend(objects)
        return ["objs", result]

    def handle(self, index: int) -> Any:
        """The object of handle ``index`` (modulo the number of handles)."""
        return self.handles[index % len(self.handles)]

    def key(self, spec: Any) -> Any:
        """A literal key, or ``{"of": index}``: the key of a handle's object (None if it has none yet)."""
        if isinstance(spec, dict):
            return self.handle(spec["of"])._pk_raw_() if self.handles else None
        return spec

    # -- operations ---------------------------------------------------------------------------------

    def op_create(self, values: dict[str, Any]) -> list[Any]:
        return self.obj(self.Item(**values))

    def op_read(self, index: int, attr: str) -> list[Any]:
        return ["ok", getattr(self.handle(index), attr)]

    def op_to_dict(self, index: int) -> list[Any]:
        return ["ok", self.handle(index).to_dict()]

    def op_write(self, index: int, attr: str, value: Any) -> list[Any]:
        setattr(self.handle(index), attr, value)
        return ["ok", None]

    def op_delete(self, index: int) -> list[Any]:
        self.handle(index).delete()
        return ["ok", None]

    def op_load(self, key: Any) -> list[Any]:
        return self.obj(self.Item[self.key(key)])

    def op_get(self, key: Any) -> list[Any]:
        obj = self.Item.get(id=self.key(key))
        return ["none"] if obj is None else self.obj(obj)

    def op_get_by(self, attr: str, value: Any) -> list[Any]:
        obj = self.Item.get(**{attr: value})
        return ["none"] if obj is None else self.obj(obj)

    def op_select(self, condition: list[Any]) -> list[Any]:
        Item = self.Item
        kind = condition[0]
        if kind == "all":
            query = Item.select()
        elif kind == "qty_ge":
            query = Item.select(Item.qty >= condition[1])
        elif kind == "name":
            query = Item.select(name=condition[1])
        else:
            query = Item.select(Item.note.is_(None))
        return self.objs(list(query.order_by(Item.id)))

    def op_external(self, action: str, *args: Any) -> list[Any]:
        """Another client changes the table in a transaction of its own (failing at once if it is locked).

        An UPDATE or DELETE targets the row of a handle's object (found without tracking a read).
        """
        if action == "insert":
            sql, params = (
                "INSERT INTO item (name, note, qty, score, code) VALUES (?, NULL, 0, 0.0, ?)",
                list(args),
            )
        elif not self.handles:
            return ["skip"]
        elif action == "update":
            index, attr, value = args
            sql, params = f"UPDATE item SET {attr} = ? WHERE id = ?", [value, self.handle(index)._pk_raw_()]
        else:
            sql, params = "DELETE FROM item WHERE id = ?", [self.handle(args[0])._pk_raw_()]
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            return ["ok", conn.execute(sql, params).rowcount]
        finally:
            conn.close()

    def op_flush(self) -> list[Any]:
        flush()
        return ["ok", None]

    def op_commit(self) -> list[Any]:
        commit()
        return ["ok", None]

    def op_rollback(self) -> list[Any]:
        rollback()
        return ["ok", None]

    def op_end_session(self) -> list[Any]:
        try:
            db_session.__exit__(None, None, None)
        finally:
            db_session.__enter__()
        return ["ok", None]


#: operation name -> (method, whether the rows are read back after it)
OPERATIONS: dict[str, tuple[Callable[..., list[Any]], bool]] = {
    "create": (Run.op_create, False),
    "read": (Run.op_read, False),
    "to_dict": (Run.op_to_dict, False),
    "write": (Run.op_write, False),
    "delete": (Run.op_delete, False),
    "load": (Run.op_load, False),
    "get": (Run.op_get, False),
    "get_by": (Run.op_get_by, False),
    "select": (Run.op_select, False),
    "external": (Run.op_external, True),
    "flush": (Run.op_flush, False),
    "commit": (Run.op_commit, True),
    "rollback": (Run.op_rollback, True),
    "end_session": (Run.op_end_session, True),
}

#: operations whose first argument is a handle index
HANDLE_OPERATIONS = frozenset({"read", "to_dict", "write", "delete"})


def run_program(program: list[list[Any]], directory: str) -> dict[str, Any]:
    """Run ``program`` on a fresh database file; the trace of results, SQL and rows."""
    fd, path = tempfile.mkstemp(suffix=".sqlite", dir=directory)
    os.close(fd)
    os.remove(path)
    db = Database("sqlite", path, create_db=True)
    entity = declare(db)
    db.generate_mapping(create_tables=True)
    # Object numbers in reprs like Item[new:3] count from 1 in every program, as the model expects.
    nextorm.entity._new_object_numbers = itertools.count(1)
    capture = SqlCapture()
    logger = logging.getLogger("nextorm.sql")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    set_sql_debug(True, show_values=True)
    run = Run(entity, path)
    steps = []
    db_session.__enter__()
    try:
        for op in program:
            name, args = op[0], op[1:]
            method, read_rows = OPERATIONS[name]
            if name in HANDLE_OPERATIONS and not run.handles:
                steps.append([["skip"], [], None])
                continue
            try:
                result = method(run, *args)
            except Exception as exc:  # every error is part of the trace, whatever its class
                result = ["err", type(exc).__name__, str(exc)]
            steps.append([result, capture.take(), table_rows(path) if read_rows else None])
    finally:
        db_session.__exit__(None, None, None)
        set_sql_debug(False, show_values=False)
        logger.removeHandler(capture)
        db.disconnect()
        os.remove(path)
    return {"steps": steps}


def main() -> int:
    """Handshake, then one trace line per program line until stdin closes."""
    expected = sys.argv[1]
    loaded = "compiled" if nextorm.COMPILED else "pure"
    if expected != loaded:
        print(
            f"differential_worker: asked for the {expected} hot path but nextorm loaded the {loaded} one "
            f"(nextorm.COMPILED is {nextorm.COMPILED}); refusing to run",
            file=sys.stderr,
        )
        return 2
    print(json.dumps({"loaded": loaded}), flush=True)
    with tempfile.TemporaryDirectory(prefix="nextorm-differential-") as directory:
        for line in sys.stdin:
            trace = run_program(json.loads(line), directory)
            print(json.dumps(trace, default=repr), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
