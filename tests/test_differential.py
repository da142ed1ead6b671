"""Differential test: compiled hot path, pure twin and a plain-dict model run the same programs.

A program is a list of session operations: create, load (``Item[pk]``, ``get``, ``select``), read
(an attribute or ``to_dict()``), write (equal values, None, invalid values included), delete, flush,
commit, rollback, end the session and start another, and writes by another client on the same file.
Each program runs in a worker subprocess per hot path (``differential_worker.py``: the
implementation is chosen at import time, so each needs an interpreter of its own) and in ``Model``,
which predicts from dicts of committed rows and session state what every operation returns or
raises and which rows the database holds after each commit, rollback, session end and outside
write. Worker traces must equal the model's; the compiled and pure traces must also agree on the
SQL nextorm logged. Hypothesis generates the programs; ``SCENARIOS`` pins the ones it reaches rarely.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from differential_worker import COLUMNS, HANDLE_OPERATIONS

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# -- the model ---------------------------------------------------------------------------------------

CREATED, LOADED, MODIFIED, DELETED, GONE = 1, 2, 3, 4, 5

#: declared attributes of Item: python type, required, max_len, default
ATTRS: dict[str, tuple[type, bool, int | None, Any]] = {
    "id": (int, True, None, None),
    "name": (str, True, 8, None),
    "note": (str, False, 8, None),
    "qty": (int, True, None, 0),
    "score": (float, True, None, 0.0),
    "code": (str, False, 8, None),
}
#: columns an optimistic check compares: all but the primary key and the float
CHECKED = ("name", "note", "qty", "code")
_MISSING = object()


class ModelError(Exception):
    """An error the model predicts: the nextorm exception class name and message."""

    def __init__(self, cls: str, message: str) -> None:
        super().__init__(cls, message)
        self.cls = cls
        self.message = message


class MObject:
    """The model of one entity object."""

    def __init__(self, cache: MCache, status: int, values: dict[str, Any]) -> None:
        self.cache = cache
        self.status = status
        self.values = values
        self.read: set[str] = set()
        self.written: set[str] = set()
        self.original: dict[str, Any] = {}

    def __repr__(self) -> str:
        pk = self.values.get("id")
        if pk is None:
            return f"Item[new:{self.cache.new_numbers.get(self, '?')}]"
        return f"Item[{pk!r}]"

    def known(self, attr: str) -> Any:
        """The value the database had when the session read ``attr``."""
        return (
            self.original.get(attr, self.values.get(attr)) if attr in self.written else self.values.get(attr)
        )


class MSession:
    """The model of one db_session: the failure that makes it refuse work until rolled back."""

    def __init__(self) -> None:
        self.failure: str | None = None


class MCache:
    """The model of one session's cache: liveness, identity map, dirty queue, transaction."""

    def __init__(self, session: MSession) -> None:
        self.session = session
        self.alive = True
        self.over = "the database session is over"
        #: objects whose statements ran in the transaction: status, values before, columns written
        self.undo: dict[MObject, tuple[int, dict[str, Any], set[str]]] = {}
        self.identity: dict[int, MObject] = {}
        self.dirty: dict[MObject, None] = {}
        self.new_numbers: dict[MObject, int] = {}
        self.objects: list[MObject] = []
        self.in_transaction = False

    def holder_of_code(self, code: Any, other_than: MObject | None = None) -> MObject | None:
        """The live object of this cache whose unique ``code`` is ``code``."""
        if code is None:
            return None
        for obj in self.objects:
            if obj is not other_than and obj.status < DELETED and obj.values.get("code") == code:
                return obj
        return None


def unrepeatable(obj: MObject, attr: str, known: Any, new: Any) -> ModelError:
    """The error for a re-read row whose already-read ``attr`` changed in the database."""
    return ModelError(
        "UnrepeatableReadError",
        f"Value of Item.{attr} for {obj!r} was updated outside of current transaction (was: {known!r}, now: {new!r})",
    )


def status_word(status: int) -> str:
    """How "X was ..." messages name a deleted status."""
    return {DELETED: "marked to delete", GONE: "deleted"}.get(status, "changed")


def check_type(attr: str, value: Any) -> Any:
    """``value`` converted for ``attr``'s column type, or the ModelError nextorm raises."""
    py_type, _, max_len, _ = ATTRS[attr]
    if py_type is int:
        if type(value) is str:
            try:
                value = int(value)  # an int written as text is converted, as Pony does
            except ValueError:
                raise ModelError(
                    "AttributeTypeError", f"Value type for attribute Item.{attr} must be int. Got string {value!r}"
                ) from None
        if type(value) is not int:
            raise type_error(attr, value)
        if value < INT64_MIN:
            raise ModelError(
                "ValidationError",
                f"Value {value!r} of attr Item.{attr} is less than the minimum allowed value {INT64_MIN}",
            )
        if value > INT64_MAX:
            raise ModelError(
                "ValidationError",
                f"Value {value!r} of attr Item.{attr} is greater than the maximum allowed value {INT64_MAX}",
            )
        return value
    if py_type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise type_error(attr, value)
        try:
            value = float(value)  # a number written as text is converted, as Pony does
        except ValueError:
            raise ModelError(
                "AttributeTypeError", f"Value type for attribute Item.{attr} must be float. Got string {value!r}"
            ) from None
        if value in (float("inf"), float("-inf")) or value != value:
            raise ModelError(
                "ValidationError", f"Value {value!r} of attribute Item.{attr} is not a finite number"
            )
        return value
    if not isinstance(value, str):
        raise type_error(attr, value)
    value = value.strip()  # autostrip, on by default
    if max_len is not None and len(value) > max_len:
        raise ModelError(
            "ValidationError",
            f"Value {value!r} of attribute Item.{attr} is longer than max_len={max_len} ({len(value)} characters)",
        )
    return value


def type_error(attr: str, value: Any) -> ModelError:
    """The error for ``value`` of the wrong type for ``attr``."""
    py_type = ATTRS[attr][0]
    return ModelError(
        "AttributeTypeError",
        f"Value type for attribute Item.{attr} must be {py_type.__name__}. Got {type(value).__name__}: {value!r}",
    )


def validate(attr: str, value: Any, obj: MObject | None = None) -> Any:
    """What assigning ``value`` to ``attr`` stores, or the ModelError it raises."""
    _, required, _, _ = ATTRS[attr]
    where = f"{obj!r}.{attr}" if obj is not None else f"Item.{attr}"
    if value is None:
        if required and attr != "id":
            raise ModelError("ValidationError", f"Attribute {where} is required")
        return None
    value = check_type(attr, value)
    if value == "" and required:
        raise ModelError("ValidationError", f"Attribute {where} is required")
    return value


class Model:
    """Predicts a program's trace from a dict of committed rows and the session's visible state."""

    def __init__(self) -> None:
        self.committed: dict[int, dict[str, Any]] = {}
        self.committed_seq = 0
        self.rows: dict[int, dict[str, Any]] = {}
        self.seq = 0
        self.cache: MCache | None = None
        self.session = MSession()
        #: (object, status, columns written, values before) saved by the flush under way
        self.saving: list[tuple[MObject, int, set[str], dict[str, Any]]] = []
        self.handles: list[MObject] = []
        self.new_number = 0

    def run(self, program: list[list[Any]]) -> list[list[Any]]:
        """The expected (result, rows) of every operation."""
        steps = []
        for op in program:
            name, args = op[0], op[1:]
            if name in HANDLE_OPERATIONS and not self.handles:
                steps.append([["skip"], None])
                continue
            try:
                result = getattr(self, f"op_{name}")(*args)
            except ModelError as exc:
                result = ["err", exc.cls, exc.message]
            rows = self.table() if name in ("commit", "rollback", "end_session", "external") else None
            steps.append([result, rows])
        return steps

    def table(self) -> list[list[Any]]:
        """The committed rows, as a connection of another client reads them."""
        return [[pk] + [self.committed[pk][c] for c in COLUMNS[1:]] for pk in sorted(self.committed)]

    # -- results ---------------------------------------------------------------------------------

    def obj(self, obj: MObject) -> list[Any]:
        """``obj`` as a result, remembered as a new handle (as the worker reports it)."""
        same_as = next((i for i, h in enumerate(self.handles) if h is obj), -1)
        self.handles.append(obj)
        return ["obj", repr(obj), same_as]

    def objs(self, objects: list[MObject]) -> list[Any]:
        """Objects as a result, each remembered as a new handle."""
        known = list(self.handles)
        result = [[repr(o), next((i for i, h in enumerate(known) if h is o), -1)] for o in objects]
        self.handles.extend(objects)
        return ["objs", result]

    def handle(self, index: int) -> MObject:
        return self.handles[index % len(self.handles)]

    # -- session and transaction ---------------------------------------------------------------------

    def cache_for(self) -> MCache:
        """The session's cache, created on first use; a failed session refuses."""
        self.refuse_if_failed(self.session)
        if self.cache is None:
            self.cache = MCache(self.session)
        return self.cache

    @staticmethod
    def refuse_if_failed(session: MSession) -> None:
        if session.failure is not None:
            raise ModelError(
                "PendingRollbackError",
                f"This session failed and refuses all work until it is rolled back: {session.failure}. "
                "Call rollback() to go on (leaving the db_session block also rolls back)",
            )

    def closed(self, obj: MObject, what: str) -> ModelError:
        """The error for ``what`` on an object whose cache is closed."""
        self.refuse_if_failed(obj.cache.session)
        return ModelError("DatabaseSessionIsOver", f"{what}: {obj.cache.over}")

    def rollback(self) -> None:
        """Detach the session's objects, undo in them what flushes wrote, forget the transaction."""
        cache = self.cache
        if cache is not None:
            for obj, (status, before, written) in cache.undo.items():
                if status == CREATED or obj.status == CREATED:
                    continue
                for attr in written - obj.written:  # changes not flushed keep their values
                    obj.values[attr] = before[attr]
                if obj.status == GONE:
                    obj.status = LOADED
            cache.alive = False
            cache.over = "the session was rolled back"
            self.cache = None
        self.session.failure = None
        self.rows = {pk: dict(row) for pk, row in self.committed.items()}
        self.seq = self.committed_seq

    def commit(self) -> None:
        """Flush, then make the transaction's rows the committed ones."""
        cache = self.cache
        if cache is None:
            return
        self.flush(cache)
        if cache.in_transaction:
            self.committed = {pk: dict(row) for pk, row in self.rows.items()}
            self.committed_seq = self.seq
            cache.in_transaction = False
            cache.undo.clear()

    def flush(self, cache: MCache) -> None:
        """Send the dirty queue in first-change order, in groups of one statement shape."""
        if not cache.dirty:
            return
        batch = list(cache.dirty)
        cache.dirty.clear()
        cache.in_transaction = True
        try:
            group: list[MObject] = []
            shape: Any = None
            for obj in batch:
                if obj.status == CREATED:
                    obj_shape: Any = ("I",)
                elif obj.status == MODIFIED:
                    written = tuple(a for a in COLUMNS if a in obj.written)
                    obj_shape = ("U", written, self.checks(obj))
                elif obj.status == DELETED:
                    obj_shape = ("D", self.checks(obj))
                else:
                    continue
                if obj_shape != shape:
                    if group:
                        self.save(shape, group)
                    group, shape = [], obj_shape
                group.append(obj)
            if group:
                self.save(shape, group)
        except ModelError as exc:
            for obj, status, written, original in reversed(self.saving):
                obj.status = status  # saved by the failed flush: pending again
                obj.written |= written
                obj.original = {**original, **obj.original}
            self.saving.clear()
            self.rollback()
            self.session.failure = exc.message
            raise
        for obj, status, written, original in self.saving:
            entry = cache.undo.get(obj)
            if entry is None:
                cache.undo[obj] = (status, dict(original), set(written))
            else:
                for attr, value in original.items():
                    if attr not in entry[2]:
                        entry[1][attr] = value
                entry[2].update(written)
        self.saving.clear()

    @staticmethod
    def checks(obj: MObject) -> tuple[tuple[str, bool], ...]:
        """The optimistic checks of ``obj``'s UPDATE or DELETE: each read column, and whether it is NULL."""
        return tuple((a, obj.known(a) is None) for a in CHECKED if a in obj.read)

    def save(self, shape: Any, group: list[MObject]) -> None:
        """Run one group's INSERT, UPDATE or DELETE statements on the transaction's rows."""
        cache = group[0].cache
        kind = shape[0]
        for obj in group:
            pk = obj.values.get("id")
            if kind != "I":
                self.check_row(obj, shape[-1])
            if kind == "D":
                del self.rows[pk]
                continue
            columns = COLUMNS[1:] if kind == "I" else shape[1]
            code = obj.values["code"]
            if (
                "code" in columns
                and code is not None
                and any(row["code"] == code for key, row in self.rows.items() if key != pk)
            ):
                raise self.integrity_error(obj)
            if kind == "I":
                self.seq = pk = self.seq + 1
                obj.values["id"] = pk
                cache.identity[pk] = obj
                self.rows[pk] = {}
            self.rows[pk].update({c: obj.values[c] for c in columns})
        for obj in group:
            self.saving.append((obj, obj.status, set(obj.written), dict(obj.original)))
            if kind == "D":
                cache.identity.pop(obj.values["id"], None)
                obj.status = GONE
            else:
                cache.new_numbers.pop(obj, None)
                obj.status = LOADED
                obj.written.clear()
                obj.original.clear()

    def check_row(self, obj: MObject, checks: tuple[tuple[str, bool], ...]) -> None:
        """The optimistic check of an UPDATE or DELETE: the row is there with the values the session read."""
        row = self.rows.get(obj.values["id"])
        if row is None:
            raise ModelError(
                "OptimisticCheckError", f"Object {obj!r} was deleted outside of current transaction"
            )
        changes = [f"{a} ({obj.known(a)!r} -> {row[a]!r})" for a, _ in checks if row[a] != obj.known(a)]
        if changes:
            raise ModelError(
                "OptimisticCheckError",
                f"Object {obj!r} was updated outside of current transaction. Changes: {', '.join(changes)}",
            )

    @staticmethod
    def integrity_error(obj: MObject) -> ModelError:
        """The database refused ``obj``'s row (a batch is replayed row by row to find it)."""
        return ModelError(
            "TransactionIntegrityError",
            f"Object {obj!r} cannot be stored in the database. IntegrityError: UNIQUE constraint failed: "
            f"item.code (values: code={obj.values['code']!r})",
        )

    # -- loading ---------------------------------------------------------------------------------------

    def materialize(self, cache: MCache, pks: list[int]) -> list[MObject]:
        """Objects for rows ``pks``: the identity map's, or new ones."""
        result = []
        for pk in pks:
            obj = cache.identity.get(pk)
            if obj is None:
                obj = MObject(cache, LOADED, {"id": pk, **self.rows[pk]})
                cache.identity[pk] = obj
                cache.objects.append(obj)
            else:
                self.merge(obj, self.rows[pk])
            result.append(obj)
        return result

    @staticmethod
    def merge(obj: MObject, row: dict[str, Any]) -> None:
        """Bring a re-read row into a known object: refresh what changed, unless the session read it."""
        for attr in COLUMNS[1:]:
            new = row[attr]
            if attr in obj.written:
                known = obj.original.get(attr, _MISSING)
                if known is not _MISSING and attr in obj.read and attr in CHECKED and known != new:
                    raise unrepeatable(obj, attr, known, new)
                continue
            if obj.values[attr] != new:
                if attr in obj.read and attr in CHECKED:
                    raise unrepeatable(obj, attr, obj.values[attr], new)
                obj.values[attr] = new

    def by_key(self, key: Any) -> MObject:
        """``Item[key]``: validate the key, then the identity map, then the database."""
        if isinstance(key, dict):
            key = self.handle(key["of"]).values.get("id") if self.handles else None
        if key is None:
            raise ModelError("ValidationError", "Primary key of Item cannot be None")
        if type(key) is not int and type(key) is not str:
            raise type_error("id", key)
        key = check_type("id", key)
        cache = self.cache_for()
        obj = cache.identity.get(key)
        if obj is not None:
            if obj.status >= DELETED:
                raise ModelError("ObjectNotFound", f"Item[{key!r}]")
            return obj
        self.flush(cache)
        if key not in self.rows:
            raise ModelError("ObjectNotFound", f"Item[{key!r}]")
        return self.materialize(cache, [key])[0]

    def query(self, matches: Any, limit: int | None = None) -> list[MObject]:
        """A SELECT: autoflush, then the objects of the matching rows in id order."""
        cache = self.cache_for()
        self.flush(cache)
        pks = [pk for pk in sorted(self.rows) if matches(self.rows[pk])]
        return self.materialize(cache, pks[:limit])

    # -- operations ------------------------------------------------------------------------------------

    def op_create(self, kwargs: dict[str, Any]) -> list[Any]:
        values = {}
        for attr, (_, _, _, default) in ATTRS.items():
            if attr in kwargs:
                values[attr] = validate(attr, kwargs[attr])
            elif attr != "id":
                values[attr] = validate(attr, default)
        cache = self.cache_for()
        code = values["code"]
        if cache.holder_of_code(code) is not None:
            raise ModelError(
                "CacheIndexError", f"Cannot create Item: value {code!r} for key code already exists"
            )
        obj = MObject(cache, CREATED, values)
        cache.objects.append(obj)
        self.new_number += 1
        cache.new_numbers[obj] = self.new_number
        cache.dirty[obj] = None
        return self.obj(obj)

    def op_read(self, index: int, attr: str) -> list[Any]:
        obj = self.handle(index)
        if not obj.cache.alive:
            if attr not in obj.values:
                raise self.closed(obj, f"Cannot load attribute {obj!r}.{attr}")
            return ["ok", obj.values[attr]]
        if obj.status >= DELETED:
            if obj.status == DELETED or (attr == "id" and attr in obj.values):
                return ["ok", obj.values.get(attr)]
            raise ModelError("OperationWithDeletedObjectError", f"{obj!r} was {status_word(obj.status)}")
        if attr not in obj.values:
            return ["ok", None]  # the id of a new object reads None until it is flushed
        obj.read.add(attr)
        return ["ok", obj.values[attr]]

    def op_to_dict(self, index: int) -> list[Any]:
        obj = self.handle(index)
        if obj.cache.alive and obj.status == CREATED and "id" not in obj.values:
            self.flush(obj.cache)  # to_dict() of a new object flushes to give its id
        return ["ok", {attr: self.op_read(index, attr)[1] for attr in COLUMNS}]

    def op_write(self, index: int, attr: str, value: Any) -> list[Any]:
        obj = self.handle(index)
        if not obj.cache.alive:
            raise self.closed(obj, f"Cannot assign new value to {obj!r}.{attr}")
        if obj.status >= DELETED:
            raise ModelError("OperationWithDeletedObjectError", f"{obj!r} was {status_word(obj.status)}")
        if attr == "id":
            if "id" not in obj.values or obj.values["id"] != value:  # a new object has no key to equal
                raise ModelError(
                    "ReadOnlyAttributeError",
                    f"Cannot change value of primary key attribute Item.id of {obj!r} to {value!r}",
                )
            validate(attr, value, obj)
            return ["ok", None]  # the same key: not a change
        value = validate(attr, value, obj)
        old = obj.values[attr]
        if old == value:
            return ["ok", None]
        if attr == "code":
            holder = obj.cache.holder_of_code(value, other_than=obj)
            if holder is not None:
                raise ModelError(
                    "CacheIndexError", f"Cannot update Item.code: {holder!r} with key {value} already exists"
                )
        if obj.status != CREATED and attr not in obj.written:
            obj.original[attr] = old
        obj.written.add(attr)
        obj.values[attr] = value
        if obj.status == LOADED:
            obj.status = MODIFIED
            obj.cache.dirty[obj] = None
        return ["ok", None]

    def op_delete(self, index: int) -> list[Any]:
        obj = self.handle(index)
        cache = obj.cache
        if not cache.alive:
            raise self.closed(obj, f"Cannot delete object {obj!r}")
        if obj.status >= DELETED:
            return ["ok", None]
        if obj.status == CREATED:
            obj.status = GONE
            cache.dirty.pop(obj, None)
            return ["ok", None]
        obj.status = DELETED
        cache.dirty[obj] = None
        return ["ok", None]

    def op_load(self, key: Any) -> list[Any]:
        return self.obj(self.by_key(key))

    def op_get(self, key: Any) -> list[Any]:
        try:
            obj = self.by_key(key)
        except ModelError as exc:
            if exc.cls != "ObjectNotFound":
                raise
            return ["none"]
        return self.obj(obj)

    def op_get_by(self, attr: str, value: Any) -> list[Any]:
        if value is not None:
            value = check_type(attr, value)
        found = self.query(lambda row: row[attr] == value, limit=2)
        if len(found) > 1:
            raise ModelError(
                "MultipleObjectsFoundError",
                "Multiple objects were found. Use Item.select(...) to retrieve them",
            )
        return self.obj(found[0]) if found else ["none"]

    def op_select(self, condition: list[Any]) -> list[Any]:
        kind = condition[0]
        if kind == "all":
            found = self.query(lambda row: True)
        elif kind == "qty_ge":
            found = self.query(lambda row: row["qty"] >= condition[1])
        elif kind == "name":
            found = self.query(lambda row: row["name"] == condition[1])
        else:
            found = self.query(lambda row: row["note"] is None)
        return self.objs(found)

    def op_external(self, action: str, *args: Any) -> list[Any]:
        if action != "insert" and not self.handles:
            return ["skip"]
        if self.cache is not None and self.cache.in_transaction:
            raise ModelError("OperationalError", "database is locked")
        if action == "insert":
            name, code = args
            if code is not None and any(row["code"] == code for row in self.rows.values()):
                raise ModelError("IntegrityError", "UNIQUE constraint failed: item.code")
            self.seq += 1
            self.rows[self.seq] = {"name": name, "note": None, "qty": 0, "score": 0.0, "code": code}
            count = 1
        else:
            pk = self.handle(args[0]).values.get("id")
            if pk not in self.rows:
                count = 0
            elif action == "delete":
                del self.rows[pk]
                count = 1
            else:
                _, attr, value = args
                if (
                    attr == "code"
                    and value is not None
                    and any(row["code"] == value for key, row in self.rows.items() if key != pk)
                ):
                    raise ModelError("IntegrityError", "UNIQUE constraint failed: item.code")
                self.rows[pk][attr] = float(value) if attr == "score" else value
                count = 1
        self.committed = {pk: dict(row) for pk, row in self.rows.items()}
        self.committed_seq = self.seq
        return ["ok", count]

    def op_flush(self) -> list[Any]:
        self.refuse_if_failed(self.session)
        if self.cache is not None:
            self.flush(self.cache)
        return ["ok", None]

    def op_commit(self) -> list[Any]:
        self.refuse_if_failed(self.session)
        self.commit()
        return ["ok", None]

    def op_rollback(self) -> list[Any]:
        self.rollback()
        return ["ok", None]

    def op_end_session(self) -> list[Any]:
        failure = self.session.failure
        try:
            if failure is not None:
                self.rollback()
                raise ModelError(
                    "PendingRollbackError",
                    f"The db_session ended after a failed flush or commit that was caught inside it "
                    f"({failure}): it was rolled back, and nothing after the failure was committed",
                )
            self.commit()
        finally:
            if self.cache is not None:
                self.cache.alive = False
                self.cache = None
            self.session = MSession()
        return ["ok", None]


# -- programs --------------------------------------------------------------------------------------

VALID = {
    "id": [1, 2, 3],
    "name": ["a", "b", "c"],
    "note": ["x", "y", None],
    "qty": [0, 1, 2, -1],
    "score": [0.0, 1.5, 2],
    "code": ["k1", "k2", "k3", None, ""],
}
INVALID = {
    "id": [None, "1"],
    "name": ["", " ", None, "abcdefghi", 7],
    "note": ["abcdefghi", 3],
    "qty": ["1", "x", True, 2**63, None, 1.5],
    "score": [float("inf"), "s", None, True],
    "code": ["abcdefghi", 5],
}
#: keys of Entity[pk] and get(id=pk): mostly ids the prelude creates
KEYS = [1, 2, 3, 4] * 3 + [0, 5, 6, "1", None, 2**63, True, 1.0]
#: attributes programs read, write and change from outside, the optimistically checked ones most
FAVOURED = ["name", "qty", "code"] * 2 + ["note", "score"]


def values_of(attr: str) -> st.SearchStrategy[Any]:
    """Mostly valid values of ``attr``, sometimes one that must be refused."""
    return st.sampled_from(VALID[attr] * 2 + INVALID[attr])


def creates(values: Any) -> st.SearchStrategy[list[Any]]:
    """``Item(**kwargs)`` with a name and some of the other attributes, each drawn by ``values``."""
    return st.fixed_dictionaries(
        {"name": values("name")}, optional={attr: values(attr) for attr in ("note", "qty", "score", "code")}
    ).map(lambda kwargs: ["create", kwargs])


#: an object by its place among those returned so far, counted from the latest (most often alive)
handles = st.integers(-6, -1)
#: one strategy per kind of operation; each program uses a random subset of them (swarm testing), so
#: that the few kinds it uses meet often enough to interact
OPERATION_KINDS = [
    st.sampled_from([["flush"], ["commit"], ["flush"], ["commit"], ["rollback"], ["end_session"]]),
    creates(lambda attr: st.sampled_from(VALID[attr] * 10 + INVALID[attr])),
    st.one_of(
        st.tuples(st.just("read"), handles, st.sampled_from(["id", *FAVOURED])).map(list),
        st.tuples(st.just("to_dict"), handles).map(list),
    ),
    st.sampled_from(["id", *FAVOURED]).flatmap(
        lambda attr: st.tuples(st.just("write"), handles, st.just(attr), values_of(attr)).map(list)
    ),
    st.tuples(st.just("delete"), handles).map(list),
    st.tuples(
        st.sampled_from(["load", "get"]), st.one_of(st.sampled_from(KEYS), handles.map(lambda h: {"of": h}))
    ).map(list),
    st.tuples(
        st.just("get_by"), st.sampled_from(["name", "qty", "note"]), st.sampled_from(["a", "b", 0, 1, None])
    ).map(list),
    st.sampled_from([["all"], ["qty_ge", 1], ["name", "a"], ["note_null"]]).map(lambda c: ["select", c]),
    st.one_of(
        st.sampled_from(FAVOURED).flatmap(
            lambda attr: st.tuples(
                st.just("external"), st.just("update"), handles, st.just(attr), st.sampled_from(VALID[attr])
            ).map(list)
        ),
        st.tuples(st.just("external"), st.just("delete"), handles).map(list),
        st.tuples(
            st.just("external"),
            st.just("insert"),
            st.sampled_from(VALID["name"]),
            st.sampled_from(VALID["code"]),
        ).map(list),
    ),
]
operation_mixes = st.lists(st.sampled_from(range(len(OPERATION_KINDS))), min_size=2, unique=True).map(
    lambda kinds: st.one_of([OPERATION_KINDS[kind] for kind in sorted(kinds)])
)
#: a few committed rows, then about 20 random operations (drawn in chunks so that lists grow long)
programs = st.tuples(
    st.lists(creates(lambda attr: st.sampled_from(VALID[attr])), max_size=4),
    operation_mixes.flatmap(
        lambda ops: st.lists(st.lists(ops, min_size=1, max_size=6), min_size=1, max_size=10)
    ),
).map(lambda parts: [*parts[0], ["commit"], *(op for chunk in parts[1] for op in chunk)])


# -- workers ---------------------------------------------------------------------------------------


class Worker:
    """A long-lived ``differential_worker`` subprocess running one hot path."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("NEXTORM_NO_EXTENSIONS", None)
        if self.kind == "pure":
            env["NEXTORM_NO_EXTENSIONS"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "differential_worker", self.kind],
            cwd=Path(__file__).parent,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        handshake = self.process.stdout.readline()  # type: ignore[union-attr]
        if not handshake:
            raise RuntimeError(f"the {self.kind} worker did not start:\n{self.stop()}")
        assert json.loads(handshake) == {"loaded": self.kind}

    def run(self, program: list[list[Any]]) -> dict[str, Any]:
        """The worker's trace of ``program``; a crashed worker is restarted and its stderr raised."""
        if self.process is None or self.process.poll() is not None:
            self.start()
        assert self.process is not None and self.process.stdin and self.process.stdout
        try:
            self.process.stdin.write(json.dumps(program) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except BrokenPipeError:
            line = ""
        if not line:
            raise RuntimeError(f"the {self.kind} worker died running {program!r}:\n{self.stop()}")
        return json.loads(line)  # type: ignore[no-any-return]

    def stop(self) -> str:
        """End the process; its stderr."""
        process, self.process = self.process, None
        if process is None:
            return ""
        with process:
            _, stderr = process.communicate(timeout=30)
        return stderr  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def workers(request: pytest.FixtureRequest) -> Iterator[list[Worker]]:
    """One started worker per hot path under test: compiled (unless --no-c-extensions) and pure."""
    kinds = ["pure"] if request.config.getoption("--no-c-extensions") else ["compiled", "pure"]
    started = [Worker(kind) for kind in kinds]
    try:
        for worker in started:
            worker.start()
        yield started
    finally:
        for worker in started:
            worker.stop()


# -- comparison ------------------------------------------------------------------------------------


def first_difference(
    program: list[list[Any]], left: list[Any], right: list[Any], labels: tuple[str, str]
) -> str:
    """A report of the first step where two traces differ (compared as JSON text, so 2 != 2.0)."""
    for i, op in enumerate(program):
        a, b = json.dumps(left[i]), json.dumps(right[i])
        if a != b:
            return (
                f"step {i}: {json.dumps(op)}\n  {labels[0]}: {a}\n  {labels[1]}: {b}\n"
                f"program: {json.dumps(program)}"
            )
    return ""


def check_program(workers: list[Worker], program: list[list[Any]]) -> None:
    """Run ``program`` (plus a final session end) everywhere; every trace must match the model's."""
    program = [*program, ["end_session"]]
    expected = Model().run(program)
    traces = {worker.kind: worker.run(program)["steps"] for worker in workers}
    for kind, steps in traces.items():
        observed = [[result, rows] for result, _sql, rows in steps]
        difference = first_difference(program, expected, observed, ("model", kind))
        assert not difference, f"the {kind} hot path differs from the model at {difference}"
    if len(traces) == 2:
        difference = first_difference(program, traces["compiled"], traces["pure"], ("compiled", "pure"))
        assert not difference, f"the twins differ (result, SQL, rows) at {difference}"


#: programs pinning behaviours the random ones reach only rarely (and the bugs they found)
SCENARIOS: dict[str, list[list[Any]]] = {
    "rollback-detaches-objects": [
        ["create", {"name": "a"}],
        ["commit"],
        ["write", 0, "name", "b"],
        ["rollback"],
        ["read", 0, "name"],
        ["write", 0, "name", "c"],
        ["delete", 0],
        ["load", 1],
        ["read", 1, "name"],
    ],
    "new-object-id-after-rollback-and-after-flush": [
        ["create", {"name": "a"}],
        ["rollback"],
        ["read", 0, "id"],
        ["create", {"name": "b"}],
        ["read", 1, "id"],
        ["load", 1],
        ["end_session"],
        ["read", 1, "id"],
    ],
    "unique-clash-in-session-and-in-database": [
        ["create", {"name": "a", "code": "k1"}],
        ["create", {"name": "b", "code": "k1"}],
        ["end_session"],
        ["create", {"name": "c", "code": "k1"}],
        ["flush"],
        ["read", 1, "id"],
        ["read", 1, "name"],
    ],
    "unique-values-swapped-in-one-flush": [
        ["create", {"name": "a", "code": "k1"}],
        ["create", {"name": "b", "code": "k2"}],
        ["commit"],
        ["read", 0, "name"],
        ["read", 1, "name"],
        ["write", 0, "code", "k3"],
        ["write", 1, "code", "k1"],
        ["write", 0, "code", "k2"],
        ["commit"],
        ["select", ["all"]],
    ],
    "many-new-rows-equal-values-and-a-clash-in-one-insert": [
        ["create", {"name": "a", "qty": 1}],
        ["create", {"name": "a", "qty": 1}],
        ["create", {"name": "b", "note": "n", "code": "k1"}],
        ["create", {"name": "a", "qty": 1}],
        ["flush"],
        ["read", 0, "id"],
        ["read", 1, "id"],
        ["read", 3, "id"],
        ["create", {"name": "c", "code": "k2"}],
        ["create", {"name": "d", "code": "k1"}],
        ["create", {"name": "e", "code": "k3"}],
        ["commit"],
        ["read", 2, "name"],
    ],
    "batched-updates-and-deletes-check-what-was-read": [
        ["create", {"name": "a", "qty": 1}],
        ["create", {"name": "b", "qty": 2}],
        ["create", {"name": "c", "qty": 3}],
        ["commit"],
        ["read", 0, "qty"],
        ["read", 1, "qty"],
        ["write", 0, "qty", 5],
        ["write", 1, "qty", 6],
        ["write", 2, "qty", 7],
        ["write", 0, "note", "x"],
        ["read", 2, "name"],
        ["delete", 2],
        ["flush"],
        ["write", 1, "qty", 8],
        ["commit"],
        ["read", 1, "qty"],
    ],
    "runs-of-one-shape-flushed-twice-then-rolled-back": [
        ["create", {"name": "a", "qty": 1}],
        ["create", {"name": "b", "qty": 2}],
        ["create", {"name": "c", "qty": 3, "note": "n"}],
        ["create", {"name": "d", "qty": 4}],
        ["commit"],
        ["read", 0, "qty"],
        ["write", 0, "qty", 5],
        ["write", 1, "qty", 6],
        ["write", 2, "qty", 7],
        ["write", 3, "name", "e"],
        ["flush"],
        ["write", 0, "qty", 8],
        ["write", 0, "note", "m"],
        ["write", 3, "name", "f"],
        ["create", {"name": "g"}],
        ["create", {"name": "g"}],
        ["flush"],
        ["read", 4, "id"],
        ["read", 5, "id"],
        ["rollback"],
        ["read", 0, "qty"],
        ["read", 0, "note"],
        ["read", 3, "name"],
        ["select", ["all"]],
    ],
    "deleted-row-is-not-found": [
        ["create", {"name": "a"}],
        ["read", 0, "id"],
        ["delete", 0],
        ["read", 0, "name"],
        ["delete", 0],
        ["load", 1],
        ["get", {"of": 0}],
        ["select", ["all"]],
        ["commit"],
        ["load", 1],
        ["get", 1],
        ["read", 0, "id"],
        ["read", 0, "name"],
        ["write", 0, "qty", 3],
    ],
    "equal-none-and-invalid-writes": [
        ["create", {"name": "a", "note": "x"}],
        ["write", 0, "note", None],
        ["write", 0, "note", None],
        ["write", 0, "name", "abcdefghi"],
        ["write", 0, "name", ""],
        ["write", 0, "qty", True],
        ["write", 0, "score", 2],
        ["read", 0, "score"],
        ["write", 0, "score", 2.0],
        ["end_session"],
        ["read", 0, "note"],
        ["write", 0, "note", "abcdefghi"],
        ["delete", 0],
    ],
    "unrepeatable-read-and-optimistic-checks": [
        ["create", {"name": "a"}],
        ["create", {"name": "b"}],
        ["commit"],
        ["read", 0, "name"],
        ["external", "update", 0, "qty", 5],
        ["select", ["all"]],
        ["read", 0, "qty"],
        ["external", "update", 0, "name", "c"],
        ["select", ["all"]],
        ["write", 1, "qty", 7],
        ["external", "delete", 1],
        ["commit"],
        ["external", "update", 0, "note", "y"],
        ["write", 0, "qty", 1],
        ["commit"],
    ],
    "checks-use-the-value-read-and-equal-writes-send-nothing": [
        ["create", {"name": "a", "qty": 1}],
        ["commit"],
        ["write", 0, "qty", 1],
        ["external", "update", 0, "qty", 4],
        ["commit"],
        ["read", 0, "name"],
        ["write", 0, "name", "b"],
        ["external", "update", 0, "name", "c"],
        ["commit"],
    ],
    "key-of-another-type-is-refused-whatever-the-identity-map-holds": [
        ["create", {"name": "a"}],
        ["commit"],
        ["load", True],
        ["get", 1.0],
        ["end_session"],
        ["load", True],
        ["get", 1.0],
    ],
    "assigning-none-to-the-unassigned-key-is-refused": [
        ["create", {"name": "a"}],
        ["write", 0, "id", None],
        ["flush"],
        ["read", 0, "id"],
        ["select", ["all"]],
    ],
    "unique-index-follows-values-refreshed-from-the-database": [
        ["create", {"name": "a", "code": "k1"}],
        ["commit"],
        ["external", "update", 0, "code", "k2"],
        ["select", ["all"]],
        ["read", 0, "code"],
        ["create", {"name": "b", "code": "k1"}],
        ["commit"],
    ],
}


@pytest.mark.parametrize("program", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_twins_and_model_agree_on_scenario(workers: list[Worker], program: list[list[Any]]) -> None:
    """A named program gives the model's results and rows everywhere, and the same SQL in both twins."""
    check_program(workers, program)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(programs)
def test_twins_and_model_agree_on_random_programs(workers: list[Worker], program: list[list[Any]]) -> None:
    """Every hot path returns, raises, logs and stores exactly what the model (and the other twin) does."""
    check_program(workers, program)


def test_compiled_worker_refuses_the_pure_hot_path() -> None:
    """A worker asked for the compiled hot path exits with an error when the pure twin loaded."""
    env = dict(os.environ, NEXTORM_NO_EXTENSIONS="1")
    done = subprocess.run(
        [sys.executable, "-m", "differential_worker", "compiled"],
        cwd=Path(__file__).parent,
        env=env,
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "nextorm.COMPILED is False" in done.stderr


#: a session program over references and join tables with composite keys; it prints what it read
#: and the SQL it sent, which must be the same in both twins
COMPOSITE_PROGRAM = '''
import logging, nextorm
from nextorm import Database, Optional, PrimaryKey, Required, Set, db_session, flush
out = []
class Capture(logging.Handler):
    def emit(self, record):
        out.append(record.getMessage().split("\\n")[0])
logging.getLogger("nextorm.sql").addHandler(Capture())
logging.getLogger("nextorm.sql").setLevel(logging.INFO)
db = Database("sqlite", ":memory:")
class Student(db.Entity):
    name = Required(str)
    courses = Set("Course")
    grades = Set("Grade")
class Course(db.Entity):
    name = Required(str)
    semester = Required(int)
    PrimaryKey(name, semester)
    students = Set(Student)
    grades = Set("Grade")
class Grade(db.Entity):
    student = Required(Student)
    course = Required(Course)
    PrimaryKey(student, course)
    value = Required(int)
    note = Optional(str)
db.generate_mapping(create_tables=True)
nextorm.set_sql_debug(True)
with db_session:
    math, art = Course(name="Math", semester=1), Course(name="Art", semester=2)
    ann, bob = Student(name="Ann", courses=[math]), Student(name="Bob", courses=[math, art])
    Grade(student=ann, course=math, value=5)
    Grade(student=bob, course=art, value=3)
with db_session:
    grades = Grade.select().order_by(Grade.value)[:]
    out.append(repr([(repr(g), g.get_pk(), g.course.name, g.to_dict()) for g in grades]))
    out.append(repr(Grade[1, "Math", 1] is Grade[Student[1], ("Math", 1)] is grades[1]))
    grades[0].value = 4
    grades[1].note = "ok"
    Student[2].courses.remove(Course["Art", 2])
    Course["Art", 2].students.add(Student[1])
    flush()
    out.append(repr(sorted((s.name, sorted(c.name for c in s.courses)) for s in Student.select())))
    Course["Math", 1].delete()
with db_session:
    out.append(repr([(repr(g), g.value, g.note) for g in Grade.select()]))
    try:
        Grade[9, "Math", 1]
    except Exception as exc:
        out.append(f"{type(exc).__name__}: {exc}")
print(nextorm.COMPILED)
print("\\n".join(out))
'''


def test_twins_agree_on_composite_key_relations(request: pytest.FixtureRequest) -> None:
    """Composite references and join tables: both twins read, write and log exactly the same."""
    kinds = ["pure"] if request.config.getoption("--no-c-extensions") else ["compiled", "pure"]
    traces = []
    for kind in kinds:
        env = dict(os.environ)
        env.pop("NEXTORM_NO_EXTENSIONS", None)
        if kind == "pure":
            env["NEXTORM_NO_EXTENSIONS"] = "1"
        done = subprocess.run(
            [sys.executable, "-c", COMPOSITE_PROGRAM], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        compiled, _, trace = done.stdout.partition("\n")
        assert compiled == str(kind == "compiled")
        traces.append(trace)
    assert all(trace == traces[0] for trace in traces)
    assert "Grade[Student[2],Course['Art',2]]" in traces[0]
    assert "ObjectNotFound" in traces[0]
