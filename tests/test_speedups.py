"""The session hot path: every behaviour of ``_speedups_py``, pinned for both twins."""

from __future__ import annotations

import ast
import asyncio
import copy
import gc
import importlib
import inspect
import logging
import pickle
import sqlite3
import sys
import tracemalloc
import weakref
from contextvars import copy_context
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

NAMES = ("id", "name", "age", "score", "note")


class AssignRefused(Exception):
    """What the test columns' ``_check_assign_`` raises."""


class Unrepeatable(Exception):
    """What the test columns' ``_unrepeatable_`` raises."""


@dataclass
class Model:
    """A hand-built entity class with its columns, session, cache and hook log."""

    speedups: ModuleType
    entity: type
    columns: list[Any]
    members: list[Any]
    session: Any
    cache: Any
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def new(self, status: int, **values: Any) -> Any:
        """An object of ``entity`` in ``cache`` with ``status`` and raw ``values``."""
        obj = self.speedups.EntityBase.__new__(self.entity)
        obj._init_state_(self.cache, status)
        for name, value in values.items():
            self.column(name).set_raw(obj, value)
        return obj

    def column(self, name: str) -> Any:
        """The column called ``name``."""
        return self.entity.__dict__[name]

    def materialize(self, rows: Any, converters: Any = None, npk: int = 1, check_mask: int = -1) -> list[Any]:
        """``materialize`` of ``rows`` through the entity's identity map."""
        return self.speedups.materialize(
            self.entity,
            self.cache,
            self.session.maps.setdefault(self.entity, {}),
            self.columns,
            converters or [None] * len(self.columns),
            npk,
            check_mask,
            rows,
        )


def make_model(speedups: ModuleType, names: tuple[str, ...] = NAMES, **flags: set[str]) -> Model:
    """Build an entity class the way the ORM's metaclass does: slots, then one bound Column per slot."""
    calls: list[tuple[Any, ...]] = []

    class Col(speedups.Column):
        def _load_(self, obj: Any) -> Any:
            calls.append(("load", self.name))
            return ("loaded", self.name)

        def _read_after_session_(self, obj: Any) -> Any:
            calls.append(("after", self.name))
            return ("after", self.name)

        def _deleted_(self, obj: Any) -> Any:
            calls.append(("deleted", self.name))
            return ("deleted", self.name)

        def _check_assign_(self, obj: Any, value: Any) -> None:
            calls.append(("check", self.name, value))
            raise AssignRefused(self.name)

        def _validate_(self, obj: Any, value: Any) -> Any:
            calls.append(("validate", self.name, value))
            return value.strip() if isinstance(value, str) else value

        def _before_change_(self, obj: Any, old: Any, new: Any) -> None:
            calls.append(("change", self.name, old, new))

        def _unrepeatable_(self, obj: Any, known: Any, new: Any) -> None:
            calls.append(("unrepeatable", self.name, known, new))
            raise Unrepeatable(self.name)

    class Meta(speedups.EntityMetaBase):
        """A Python metaclass over the hot path's, as the ORM's EntityMeta is."""

    entity = Meta("Thing", (speedups.EntityBase,), {"__slots__": names})
    entity._lookup_miss_ = classmethod(lambda cls, key: ("miss", key))
    columns, members = [], []
    for index, name in enumerate(names):
        member = entity.__dict__[name]
        column = Col()
        column.name = name
        column.tracked = name in flags.get("tracked", ())
        column.readonly = name in flags.get("readonly", ())
        setattr(entity, name, column)  # in its place before it is bound, as in the ORM's classes
        column._bind_slot_(member, index)
        columns.append(column)
        members.append(member)
    session = speedups.SessionBase(None)
    cache = speedups.CacheBase(session)
    return Model(speedups, entity, columns, members, session, cache, calls)


@pytest.fixture
def model(speedups: ModuleType) -> Any:
    """A five-column model whose session is the current one for the test."""
    built = make_model(speedups, tracked={"age"}, readonly={"note"})
    token = speedups.current_session.set(built.session)
    yield built
    speedups.current_session.reset(token)


def protocol_names(obj: Any) -> set[str]:
    """Names the ORM layer may use: public ones and ``_sunder_`` ones, never dunders or privates."""
    return {n for n in dir(obj) if not n.startswith("__") and (not n.startswith("_") or n.endswith("_"))}


def own_names(module: ModuleType) -> set[str]:
    """Public names a module defines itself (imports such as ``asyncio`` or ``ContextVar`` left out)."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and getattr(value, "__module__", module.__name__) == module.__name__
    }


# --- the twins stay twins --------------------------------------------------------------------


@pytest.fixture
def twins(request: pytest.FixtureRequest) -> tuple[ModuleType, ModuleType]:
    """The compiled module (imported directly, so a missing build errors) and its pure twin.

    Tests using it are not collected under ``--no-c-extensions`` (see conftest).
    """
    return importlib.import_module("nextorm._speedups"), importlib.import_module("nextorm._speedups_py")


@pytest.mark.c_extension
def test_twins_define_the_same_public_names(twins: tuple[ModuleType, ModuleType]) -> None:
    """Both modules export the same names, and every public class the same protocol names."""
    compiled, pure = twins
    assert sorted(compiled.__all__) == sorted(pure.__all__)
    assert own_names(compiled) == own_names(pure) == set(pure.__all__)
    # the pure twin's Column is a property, whose getter makes a read of a slot one call: property's
    # own names (fget, setter, ...) are no part of the protocol
    inherited = protocol_names(property)
    for name in ("EntityBase", "EntityMetaBase", "Column", "SessionBase", "CacheBase"):
        assert protocol_names(getattr(compiled, name)) == protocol_names(getattr(pure, name)) - inherited, (
            name
        )


@pytest.mark.c_extension
def test_twins_have_the_same_signatures(twins: tuple[ModuleType, ModuleType]) -> None:
    """Functions and methods take the same parameters, with the same defaults."""
    compiled, pure = twins

    def shape(func: Any) -> list[tuple[str, Any, Any]]:
        return [(p.name, p.kind, p.default) for p in inspect.signature(func).parameters.values()]

    for name in ("lookup", "materialize"):
        assert shape(getattr(compiled, name)) == shape(getattr(pure, name)), name
    methods = {
        "EntityBase": ["_init_state_"],
        "Column": ["_bind_slot_", "get_raw", "set_raw", "clear_raw", "is_loaded"],
    }
    for cls, names in methods.items():
        for name in names:
            c, p = getattr(getattr(compiled, cls), name), getattr(getattr(pure, cls), name)
            assert shape(c) == shape(p), f"{cls}.{name}"


@pytest.mark.c_extension
def test_twins_refuse_misuse_with_the_same_errors(twins: tuple[ModuleType, ModuleType]) -> None:
    """Copying, pickling and other misuse of hot-path objects raise the same class and message in both."""

    def outcomes(speedups: ModuleType) -> list[tuple[str, str, str]]:
        built = make_model(speedups)
        token = speedups.current_session.set(built.session)
        try:
            obj = built.new(speedups.LOADED, id=1, name="a")
            misuse: list[tuple[str, Any]] = [
                ("copy", lambda: copy.copy(obj)),
                ("deepcopy", lambda: copy.deepcopy(obj)),
                ("pickle", lambda: pickle.dumps(obj)),
                ("weakref", lambda: weakref.ref(obj)),
                ("vars", lambda: vars(obj)),
                ("delete a column", lambda: delattr(obj, "name")),
                ("npk 0", lambda: built.materialize([(2, "b", 1, 1.0, "n")], npk=0)),
                ("short row", lambda: built.materialize([(3,)])),
                ("no rows", lambda: built.materialize(None)),
                ("column_values of a non-column", lambda: speedups.column_values([obj], ["id"], [None])),
                ("column_values short converters", lambda: speedups.column_values([obj], built.columns, [])),
                (
                    "column_values of no objects",
                    lambda: speedups.column_values(None, built.columns[:1], [None]),
                ),
                ("loaded_bits of a non-column", lambda: speedups.loaded_bits(obj, ["id"])),
            ]
            result = []
            for name, action in misuse:
                with pytest.raises(Exception) as info:
                    action()
                message = str(info.value).replace(repr(built.column("name")), "<column>")
                result.append((name, type(info.value).__name__, message))
            return result
        finally:
            speedups.current_session.reset(token)

    compiled, pure = twins
    assert outcomes(compiled) == outcomes(pure)
    assert outcomes(pure)[:3] == [
        (name, "TypeError", "cannot pickle 'Thing' object") for name in ("copy", "deepcopy", "pickle")
    ]


def test_stub_declares_the_pure_twins_names() -> None:
    """``_speedups.pyi`` lists and declares exactly the names the pure twin exports."""
    pure = importlib.import_module("nextorm._speedups_py")
    stub = ast.parse(Path(pure.__file__).with_name("_speedups.pyi").read_text())
    declared, listed = set(), set()
    for node in stub.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef):
            declared.add(node.name)
        elif isinstance(node, ast.AnnAssign):
            declared.add(ast.unparse(node.target))
        elif isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["__all__"]:
            listed = set(ast.literal_eval(node.value))
    assert listed == declared == set(pure.__all__)


@pytest.mark.c_extension
def test_compiled_entity_meta_base_subscript_is_a_c_slot(twins: tuple[ModuleType, ModuleType]) -> None:
    """``Entity[pk]`` reaches the compiled lookup through ``mp_subscript``, inherited by Python subclasses."""
    compiled, _ = twins

    class Meta(compiled.EntityMetaBase):
        pass

    assert type(compiled.EntityMetaBase.__dict__["__getitem__"]).__name__ == "wrapper_descriptor"
    assert "__getitem__" not in Meta.__dict__ and Meta.__getitem__ is compiled.EntityMetaBase.__getitem__


def test_status_constants(speedups: ModuleType) -> None:
    """Statuses are ordered so that ``>= DELETED`` means deleted."""
    assert (speedups.CREATED, speedups.LOADED, speedups.MODIFIED, speedups.DELETED, speedups.GONE) == (
        1,
        2,
        3,
        4,
        5,
    )


def test_current_session_is_a_context_variable(speedups: ModuleType) -> None:
    """``current_session`` is a ContextVar named nextorm_session that defaults to None."""
    assert speedups.current_session.name == "nextorm_session"
    assert copy_context().run(speedups.current_session.get) is None


# --- containers ------------------------------------------------------------------------------


def test_session_and_cache_start_empty(speedups: ModuleType) -> None:
    """A new SessionBase has its manager and nothing else; CacheBase is alive, not strict, with an empty queue."""
    manager = object()
    session = speedups.SessionBase(manager)
    assert (session.maps, session.owner, session.manager) == ({}, None, manager)
    assert (session.caches, session.depth, session.token) == ({}, 0, None)
    cache = speedups.CacheBase(session)
    assert cache.session is session
    assert cache.is_alive is True and cache.strict is False and cache.dirty == {}
    assert speedups.CacheBase(session, strict=True).strict is True


def test_session_and_cache_take_attributes_and_weak_references(speedups: ModuleType) -> None:
    """The containers and their Python subclasses have a ``__dict__`` and support weakrefs."""

    class Session(speedups.SessionBase):
        def __init__(self, name: str) -> None:
            super().__init__(None)
            self.name = name

    session = Session("s")
    cache = speedups.CacheBase(session)
    cache.database = "db"
    session.extra = 1
    assert (session.name, session.extra, cache.database) == ("s", 1, "db")
    assert weakref.ref(session)() is session and weakref.ref(cache)() is cache
    assert isinstance(session.maps, dict)


def test_entity_base_has_neither_dict_nor_weakref(speedups: ModuleType) -> None:
    """Entity instances hold only their slots: no ``__dict__``, no weak references."""
    model = make_model(speedups)
    obj = model.new(speedups.LOADED, id=1)
    with pytest.raises(AttributeError):
        obj.undeclared = 1
    with pytest.raises(TypeError):
        weakref.ref(obj)


def test_init_state(speedups: ModuleType) -> None:
    """``_init_state_`` sets the cache and status and clears bits and originals."""
    model = make_model(speedups)
    obj = model.new(speedups.LOADED)
    obj._rbits_, obj._wbits_, obj._orig_ = 3, 1, {0: 1}
    obj._init_state_(model.cache, speedups.CREATED)
    assert obj._cache_ is model.cache and obj._status_ == speedups.CREATED
    assert (obj._rbits_, obj._wbits_, obj._orig_) == (0, 0, None)


def test_state_attributes_are_plain_attributes(speedups: ModuleType) -> None:
    """``_cache_``, ``_status_``, ``_rbits_``, ``_wbits_`` and ``_orig_`` read back what was written."""
    model = make_model(speedups)
    obj = model.new(speedups.LOADED)
    other = speedups.CacheBase(None)
    obj._cache_, obj._status_, obj._orig_ = other, speedups.MODIFIED, {1: "x"}
    obj._rbits_, obj._wbits_ = 0b101, (1 << 64) - 1
    assert (obj._cache_, obj._status_, obj._orig_) == (other, speedups.MODIFIED, {1: "x"})
    assert (obj._rbits_, obj._wbits_) == (5, (1 << 64) - 1)
    assert type(obj._rbits_) is int


# --- columns ---------------------------------------------------------------------------------


def test_column_attributes(speedups: ModuleType) -> None:
    """A column starts unbound (index -1, bit 0); binding sets index and bit; flags are writable."""

    class Col(speedups.Column):
        pass

    column = Col()
    assert (column.index, column.bit, column.tracked, column.readonly) == (-1, 0, False, False)
    column.tracked = column.readonly = True
    assert (column.tracked, column.readonly) == (True, True)
    entity = type("E", (speedups.EntityBase,), {"__slots__": ("a",)})
    column._bind_slot_(entity.__dict__["a"], 3)
    assert (column.index, column.bit) == (3, 8)
    column.py_type = int
    assert column.__dict__ == {"py_type": int}


@pytest.mark.parametrize("state", ["loaded", "empty", "dead", "DELETED", "GONE"])
def test_read_of_a_slot_under_its_own_name_takes_the_same_paths(speedups: ModuleType, state: str) -> None:
    """Columns stored in slots the class finds by name (as the ORM's ``_v_<name>_``) read as any column."""
    calls: list[tuple[str, int]] = []

    class Col(speedups.Column):
        def _load_(self, obj: Any) -> Any:
            calls.append(("loaded", self.index))
            return "loaded"

        def _read_after_session_(self, obj: Any) -> Any:
            calls.append(("after", self.index))
            return "after"

        def _deleted_(self, obj: Any) -> Any:
            calls.append(("deleted", self.index))
            return "deleted"

    entity = type("Slotted", (speedups.EntityBase,), {"__slots__": ("_v_a_", "_v_b_")})
    columns = []
    for index, slot in enumerate(("_v_a_", "_v_b_")):
        column = Col()
        setattr(entity, slot[3], column)
        column._bind_slot_(entity.__dict__[slot], index + 69)
        columns.append(column)
    obj = speedups.EntityBase.__new__(entity)
    cache = speedups.CacheBase(speedups.SessionBase(None))
    obj._init_state_(cache, getattr(speedups, state, speedups.LOADED))
    if state != "empty":
        columns[1].set_raw(obj, "Bo")
    if state == "dead":
        cache.is_alive = False
    expected = {"loaded": "Bo", "empty": "loaded", "dead": "after", "DELETED": "deleted", "GONE": "deleted"}
    assert (obj.b, obj.b) == (expected[state],) * 2
    assert columns[1].__get__(obj, entity) == expected[state]
    assert obj._rbits_ == (1 << 70 if state == "loaded" else 0)
    assert calls == ([] if state == "loaded" else [(expected[state], 70)] * 3)


def test_class_access_returns_the_column(model: Model) -> None:
    """``Entity.column`` is the descriptor itself."""
    assert model.entity.name is model.column("name")


def test_read_returns_value_and_sets_read_bit(model: Model) -> None:
    """Reading a loaded value returns it and sets the column's read bit, nothing else."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann", age=30)
    assert obj.age == 30
    assert obj._rbits_ == 0b100
    assert obj.name == "Ann"
    assert obj._rbits_ == 0b110 and obj._wbits_ == 0
    assert model.calls == []


def test_read_of_unloaded_value_calls_load(model: Model) -> None:
    """An empty slot goes to ``_load_`` and sets no read bit."""
    obj = model.new(model.speedups.LOADED, id=1)
    assert obj.name == ("loaded", "name")
    assert model.calls == [("load", "name")] and obj._rbits_ == 0


def test_read_after_the_session_calls_read_after_session(model: Model) -> None:
    """Once the cache is dead even a loaded value goes to ``_read_after_session_``."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    model.cache.is_alive = False
    assert obj.name == ("after", "name")
    assert model.calls == [("after", "name")] and obj._rbits_ == 0


@pytest.mark.parametrize("status", ["DELETED", "GONE"])
def test_read_of_deleted_object_calls_deleted(model: Model, status: str) -> None:
    """A deleted or gone object goes to ``_deleted_``."""
    obj = model.new(getattr(model.speedups, status), id=1, name="Ann")
    assert obj.name == ("deleted", "name")
    assert model.calls == [("deleted", "name")]


def test_write_stores_the_validated_value(model: Model) -> None:
    """``_validate_`` sees the assigned value and its result is what is stored."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    obj.name = "  Bo  "
    assert model.column("name").get_raw(obj) == "Bo"
    assert model.calls == [("validate", "name", "  Bo  ")]


def test_write_of_an_equal_value_is_no_change(model: Model) -> None:
    """An equal value (after validation) leaves status, bits, originals and the queue alone."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    obj.name = " Ann "
    assert obj._status_ == model.speedups.LOADED
    assert (obj._wbits_, obj._orig_, model.cache.dirty) == (0, None, {})


def test_write_of_a_nan_is_a_change(model: Model) -> None:
    """Equality is ``==``, as in the pure twin: the same NaN object is not equal to itself."""
    nan = float("nan")
    obj = model.new(model.speedups.LOADED, id=1, score=nan)
    obj.score = nan
    assert obj._status_ == model.speedups.MODIFIED


def test_first_write_saves_the_original_and_queues_the_object(model: Model) -> None:
    """LOADED becomes MODIFIED, the old value is kept, the write bit set, the object queued."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    obj.name = "Bo"
    assert obj._status_ == model.speedups.MODIFIED
    assert obj._orig_ == {1: "Ann"} and obj._wbits_ == 0b10
    assert list(model.cache.dirty) == [obj]


def test_second_write_keeps_the_first_original(model: Model) -> None:
    """The original is the value loaded from the database, not an intermediate one."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    obj.name = "Bo"
    obj.name = "Cy"
    assert obj._orig_ == {1: "Ann"} and model.column("name").get_raw(obj) == "Cy"


def test_write_of_an_unloaded_value_saves_no_original(model: Model) -> None:
    """Nothing was loaded, so nothing is kept; the write bit and the queue still change."""
    obj = model.new(model.speedups.LOADED, id=1)
    obj.name = "Bo"
    assert obj._orig_ is None and obj._wbits_ == 0b10
    assert obj._status_ == model.speedups.MODIFIED and list(model.cache.dirty) == [obj]


def test_dirty_queue_keeps_first_change_order(model: Model) -> None:
    """Objects enter the queue once, in the order they were first changed."""
    a, b, c = (model.new(model.speedups.LOADED, id=i, name="x") for i in range(3))
    b.name = "1"
    a.name = "2"
    b.name = "3"
    c.name = "4"
    assert list(model.cache.dirty) == [b, a, c]


def test_created_object_stays_created_without_originals(model: Model) -> None:
    """A pending INSERT keeps its status, saves no originals and is not queued again."""
    obj = model.new(model.speedups.CREATED, id=1, name="Ann")
    obj.name = "Bo"
    assert obj._status_ == model.speedups.CREATED
    assert obj._orig_ is None and obj._wbits_ == 0b10 and model.cache.dirty == {}


def test_modified_object_is_not_queued_again(model: Model) -> None:
    """A write to a MODIFIED object saves the original but leaves the queue as it is."""
    obj = model.new(model.speedups.MODIFIED, id=1, name="Ann")
    obj.name = "Bo"
    assert obj._orig_ == {1: "Ann"} and model.cache.dirty == {}


def test_write_to_readonly_column_calls_check_assign(model: Model) -> None:
    """A ``readonly`` column refuses through ``_check_assign_`` before validation."""
    obj = model.new(model.speedups.LOADED, id=1, note="n")
    with pytest.raises(AssignRefused):
        obj.note = "m"
    assert model.calls == [("check", "note", "m")]
    assert model.column("note").get_raw(obj) == "n"


def test_write_from_another_session_calls_check_assign(model: Model) -> None:
    """An assignment outside the owning session is refused through ``_check_assign_``."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    token = model.speedups.current_session.set(model.speedups.SessionBase(None))
    try:
        with pytest.raises(AssignRefused):
            obj.name = "Bo"
    finally:
        model.speedups.current_session.reset(token)
    with pytest.raises(AssignRefused):
        copy_context().run(lambda: (model.speedups.current_session.set(None), setattr(obj, "name", "Bo")))
    assert model.calls == [("check", "name", "Bo")] * 2


@pytest.mark.parametrize("state", ["dead", "DELETED", "GONE"])
def test_write_after_session_or_to_deleted_calls_check_assign(model: Model, state: str) -> None:
    """A dead cache or a deleted object makes every assignment go through ``_check_assign_``."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    if state == "dead":
        model.cache.is_alive = False
    else:
        obj._status_ = getattr(model.speedups, state)
    with pytest.raises(AssignRefused):
        obj.name = "Bo"
    assert model.calls == [("check", "name", "Bo")]


def test_check_assign_that_returns_lets_the_write_proceed(speedups: ModuleType) -> None:
    """``_check_assign_`` decides: when it returns, the assignment goes on as usual."""
    model = make_model(speedups, readonly={"name"})
    type(model.column("name"))._check_assign_ = lambda self, obj, value: model.calls.append(
        ("allowed", value)
    )
    obj = model.new(speedups.LOADED, id=1, name="Ann")
    token = speedups.current_session.set(model.session)
    try:
        obj.name = "Bo"
    finally:
        speedups.current_session.reset(token)
    assert model.calls == [("allowed", "Bo"), ("validate", "name", "Bo")]
    assert obj._orig_ == {1: "Ann"} and obj._status_ == speedups.MODIFIED


def test_before_change_is_called_only_for_tracked_columns(model: Model) -> None:
    """``_before_change_(obj, old, new)`` runs for tracked columns, with None for an unloaded old value."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    obj.name = "Bo"
    obj.age = 5
    obj.age = 6
    obj.age = 6
    changes = [call for call in model.calls if call[0] == "change"]
    assert changes == [("change", "age", None, 5), ("change", "age", 5, 6)]


def test_delete_of_a_column_raises(model: Model) -> None:
    """``del obj.column`` is not a way to unload a value."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    with pytest.raises(AttributeError, match="cannot be deleted"):
        del obj.name
    assert model.column("name").get_raw(obj) == "Ann"


def test_column_of_another_class_does_not_apply(model: Model) -> None:
    """Raw access to an object of an unrelated class fails like the slot itself does."""
    other = type("Other", (model.speedups.EntityBase,), {"__slots__": ("name",)})()
    with pytest.raises(TypeError):
        model.column("name").set_raw(other, 1)
    with pytest.raises(TypeError):
        model.column("name").get_raw(other)


def test_subclass_instances_use_the_inherited_slots(speedups: ModuleType) -> None:
    """Objects of an entity subclass with more slots read and write the inherited columns."""
    model = make_model(speedups)
    sub = type("Sub", (model.entity,), {"__slots__": ("extra",)})
    obj = speedups.EntityBase.__new__(sub)
    obj._init_state_(model.cache, speedups.LOADED)
    model.column("name").set_raw(obj, "Ann")
    obj.extra = 1
    assert obj.name == "Ann" and obj._rbits_ == 0b10 and obj.extra == 1


def test_column_bound_to_a_property_uses_it(speedups: ModuleType) -> None:
    """A column bound to a descriptor that is not a slot stores values through that descriptor."""
    model = make_model(speedups, names=("id",))
    store: dict[int, Any] = {}

    def fget(obj: Any) -> Any:
        if id(obj) not in store:
            raise AttributeError("value")
        return store[id(obj)]

    def fdel(obj: Any) -> None:
        if id(obj) not in store:
            raise AttributeError("value")
        del store[id(obj)]

    prop = property(fget, lambda obj, value: store.__setitem__(id(obj), value), fdel)
    value = model.columns[0].__class__()
    value.name = "value"
    value._bind_slot_(prop, 1)
    model.entity.value = value
    obj = model.new(speedups.LOADED, id=1)
    token = speedups.current_session.set(model.session)
    try:
        assert not value.is_loaded(obj) and obj.value == ("loaded", "value")
        obj.value = "x"
        assert store == {id(obj): "x"} and obj.value == "x"
        assert obj._rbits_ == 0b10 and obj._wbits_ == 0b10 and obj._status_ == speedups.MODIFIED
        value.clear_raw(obj)
        value.clear_raw(obj)
        assert store == {}
    finally:
        speedups.current_session.reset(token)


# --- wide entities ---------------------------------------------------------------------------


def test_wide_entity_bits_are_full_width_ints(speedups: ModuleType) -> None:
    """Columns 64 and up track reads, writes and originals like the others, as plain ints."""
    names = tuple(f"c{i}" for i in range(70))
    model = make_model(speedups, names=names, tracked={"c69"})
    assert model.column("c68").bit == 1 << 68
    obj = model.new(speedups.LOADED, c0=0, c63=63, c68=68, c69=69)
    token = speedups.current_session.set(model.session)
    try:
        assert (obj.c68, obj.c63, obj.c0) == (68, 63, 0)
        assert obj._rbits_ == (1 << 68) | (1 << 63) | 1
        obj.c69 = 690
        obj.c69 = 691
        obj.c1 = 1
    finally:
        speedups.current_session.reset(token)
    assert obj._wbits_ == (1 << 69) | 2
    assert obj._orig_ == {69: 69}
    assert ("change", "c69", 69, 690) in model.calls
    obj._rbits_ = (1 << 69) | (1 << 64) | 7
    assert obj._rbits_ == (1 << 69) | (1 << 64) | 7
    obj._rbits_ = 0
    obj._wbits_ = 1 << 65
    assert (obj._rbits_, obj._wbits_) == (0, 1 << 65)


def test_wide_entity_merge_checks_high_columns(speedups: ModuleType) -> None:
    """An unrepeatable read of column 66 is caught; ``check_mask`` excludes high columns too."""
    names = tuple(f"c{i}" for i in range(70))
    model = make_model(speedups, names=names)
    row = tuple(range(70))
    (obj,) = model.materialize([row])
    obj._rbits_ = 1 << 66
    changed = (*row[:66], -1, *row[67:])
    model.materialize([changed], check_mask=(1 << 70) - 1 - (1 << 66))
    assert model.column("c66").get_raw(obj) == -1
    with pytest.raises(Unrepeatable):
        model.materialize([row])
    assert model.calls == [("unrepeatable", "c66", -1, 66)]


# --- session entry and exit ------------------------------------------------------------------


class Manager:
    """A db_session manager stand-in: makes and installs sessions, logs the hooks."""

    def __init__(self, speedups: ModuleType, log: list[tuple[Any, ...]]) -> None:
        self.speedups = speedups
        self.log = log

    def session_type(self, manager: Any) -> Any:
        """Makes a new session for ``manager`` (logged), as the ORM's Session class does."""
        self.log.append(("new", manager))
        return self.speedups.SessionBase(manager)

    def _check_nested_(self, session: Any) -> None:
        self.log.append(("nested", self))

    def _finish_(self, session: Any, exc: Any) -> None:
        self.log.append(("finish", exc))
        self.speedups.current_session.reset(session.token)


def test_current_task(speedups: ModuleType) -> None:
    """``current_task()`` is the running asyncio task, or None outside an event loop."""

    async def main() -> Any:
        return speedups.current_task() is asyncio.current_task()

    assert speedups.current_task() is None
    assert asyncio.run(main()) is True


def test_current_task_outside_a_loop_is_the_borrowed_one(speedups: ModuleType) -> None:
    """Outside an event loop ``current_task()`` is ``borrowed_task`` (set by run_sync's worker thread)."""
    import contextvars

    marker = object()

    def borrowing() -> Any:
        speedups.borrowed_task.set(marker)
        return speedups.current_task()

    assert contextvars.copy_context().run(borrowing) is marker
    assert speedups.current_task() is None


def test_enter_and_exit_nest_in_one_session(speedups: ModuleType) -> None:
    """The outermost enter makes the session, inner ones go deeper; only the outermost exit ends it."""
    log: list[tuple[Any, ...]] = []
    manager, other = Manager(speedups, log), Manager(speedups, log)

    def run() -> None:
        outer = speedups.enter_session(manager)
        assert speedups.current_session.get() is outer and outer.depth == 1
        assert speedups.enter_session(other) is outer and outer.depth == 2
        assert speedups.enter_session(manager) is outer and outer.depth == 3
        speedups.exit_session(manager)
        speedups.exit_session(other, None, None, None)
        assert log == [("new", manager), ("nested", other)] and outer.depth == 1
        speedups.exit_session(manager)
        assert outer.depth == 0 and speedups.current_session.get() is None

    copy_context().run(run)
    assert log[-1:] == [("nested", other)]


def test_exit_of_a_session_with_caches_finishes_it(speedups: ModuleType) -> None:
    """A session that touched a database is ended by its manager's ``_finish_`` with the exception."""
    log: list[tuple[Any, ...]] = []
    manager = Manager(speedups, log)
    error = ValueError("boom")

    def run() -> None:
        session = speedups.enter_session(manager)
        session.caches["db"] = speedups.CacheBase(session)
        speedups.exit_session(manager, ValueError, error, None)
        assert speedups.current_session.get() is None

    copy_context().run(run)
    assert log == [("new", manager), ("finish", error)]


def test_enter_and_exit_bind_as_context_manager_methods(speedups: ModuleType) -> None:
    """``__enter__ = enter_session`` and ``__exit__ = exit_session`` make a working context manager."""
    log: list[tuple[Any, ...]] = []

    class DbSession(Manager):
        __enter__ = speedups.enter_session
        __exit__ = speedups.exit_session

    manager = DbSession(speedups, log)

    def run() -> None:
        with manager as outer, manager as inner:
            assert inner is outer and outer.depth == 2
        assert speedups.current_session.get() is None

    copy_context().run(run)
    assert log == [("new", manager)]


def test_a_task_does_not_enter_a_session_of_another_task(speedups: ModuleType) -> None:
    """A task created inside a session gets a new session of its own; its parent keeps the old one."""
    log: list[tuple[Any, ...]] = []
    manager = Manager(speedups, log)

    async def child() -> Any:
        session = speedups.enter_session(manager)
        speedups.exit_session(manager)
        return session

    async def parent() -> tuple[Any, Any, Any]:
        outer = speedups.enter_session(manager)
        again = speedups.enter_session(manager)
        speedups.exit_session(manager)
        inner = await asyncio.create_task(child())
        speedups.exit_session(manager)
        return outer, again, inner

    outer, again, inner = asyncio.run(parent())
    assert again is outer and inner is not outer
    assert log == [("new", manager), ("new", manager)]


# --- identity map ----------------------------------------------------------------------------


def test_lookup_hit_returns_the_object(model: Model) -> None:
    """``Entity[pk]`` returns the identity map's object without calling the miss hook."""
    obj = model.new(model.speedups.LOADED, id=7)
    model.session.maps[model.entity] = {7: obj}
    assert model.entity[7] is obj
    assert model.speedups.lookup(model.entity, 7) is obj


def test_lookup_of_modified_and_created_objects_hits(model: Model) -> None:
    """Pending inserts and updates are in the map like loaded objects."""
    created = model.new(model.speedups.CREATED, id=1)
    modified = model.new(model.speedups.MODIFIED, id=2)
    model.session.maps[model.entity] = {1: created, 2: modified}
    assert (model.entity[1], model.entity[2]) == (created, modified)


@pytest.mark.parametrize("status", ["DELETED", "GONE"])
def test_lookup_of_deleted_object_misses(model: Model, status: str) -> None:
    """A deleted object is not returned: the lookup goes to ``_lookup_miss_``."""
    model.session.maps[model.entity] = {7: model.new(getattr(model.speedups, status), id=7)}
    assert model.entity[7] == ("miss", 7)


def test_lookup_misses(model: Model) -> None:
    """Unknown key, unknown class, a session with an owner, no session: all go to the miss hook."""
    assert model.entity[1] == ("miss", 1)
    model.session.maps[model.entity] = {2: model.new(model.speedups.LOADED, id=2)}
    assert model.entity[1] == ("miss", 1)
    assert model.entity[(1, 2)] == ("miss", (1, 2))
    model.session.owner = object()
    assert model.entity[2] == ("miss", 2)
    model.session.owner = None
    assert copy_context().run(lambda: (model.speedups.current_session.set(None), model.entity[2])[1]) == (
        "miss",
        2,
    )


def test_lookup_of_an_object_of_another_class_in_a_shared_map_goes_to_the_miss_hook(model: Model) -> None:
    """An entity hierarchy shares one map: ``Sub[pk]`` or ``Root[pk]`` hits only an object of exactly that class."""
    sub = type(model.entity)("Sub", (model.entity,), {"__slots__": ()})
    imap = {1: model.new(model.speedups.LOADED, id=1)}
    child = model.speedups.EntityBase.__new__(sub)
    child._init_state_(model.cache, model.speedups.LOADED)
    imap[2] = child
    model.session.maps[model.entity] = model.session.maps[sub] = imap
    assert model.entity[1] is imap[1] and sub[2] is child
    assert sub[1] == ("miss", 1)
    assert model.entity[2] == ("miss", 2)
    assert model.speedups.lookup(model.entity, 2) == ("miss", 2)


class IntKey(int):
    """An int subclass: equal to an int key, but not of the exact type the map answers for."""


class StrKey(str):
    """A str subclass: equal to a str key, but not of the exact type the map answers for."""


def test_lookup_of_plain_keys_hits(model: Model) -> None:
    """Exact ints and strs, and tuples of them, are answered from the map."""
    objs = {key: model.new(model.speedups.LOADED) for key in (0, 1, 2**70, -3, "", "a", (1, "a"), (2, 3), ())}
    model.session.maps[model.entity] = dict(objs)
    for key, obj in objs.items():
        assert model.entity[key] is obj and model.speedups.lookup(model.entity, key) is obj
    assert model.calls == []


@pytest.mark.parametrize(
    "key",
    [
        True,
        False,
        1.0,
        0.0,
        IntKey(1),
        StrKey("a"),
        (True, "a"),
        (1, StrKey("a")),
        (1.0, "a"),
        [1],
        (1, [2]),
        {},
    ],
    ids=repr,
)
def test_lookup_of_a_key_of_another_type_goes_to_the_miss_hook(model: Model, key: Any) -> None:
    """A key that only compares equal to a stored one (True == 1), or is unhashable, is left to ``_lookup_miss_``."""
    objs = {k: model.new(model.speedups.LOADED) for k in (1, 0, "a", (1, "a"))}
    model.session.maps[model.entity] = objs
    for result in (model.entity[key], model.speedups.lookup(model.entity, key)):
        assert result[0] == "miss" and result[1] is key


def test_entity_meta_base_subclasses_are_python_metaclasses(speedups: ModuleType) -> None:
    """A Python subclass keeps ``__new__``, ``__iter__``, ``__repr__`` and methods; its classes subscript and die."""
    created: list[str] = []

    class Meta(speedups.EntityMetaBase):
        def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> Any:
            namespace.setdefault("__slots__", ())
            cls = super().__new__(mcs, name, bases, namespace)
            cls._finish_declaration_(name)
            return cls

        def _finish_declaration_(cls, name: str) -> None:
            created.append(name)

        def __iter__(cls) -> Any:
            return iter(("row", cls.__name__))

        def __repr__(cls) -> str:
            return f"<Entity {cls.__name__}>"

    class Thing(speedups.EntityBase, metaclass=Meta):
        @classmethod
        def _lookup_miss_(cls, key: Any) -> Any:
            return cls, key

    Other = Meta("Other", (Thing,), {})
    assert created == ["Thing", "Other"] and Thing.__slots__ == ()
    assert (Thing[3], Other["x"]) == ((Thing, 3), (Other, "x"))
    assert (list(Other), repr(Other), type(Other)) == (["row", "Other"], "<Entity Other>", Meta)
    assert isinstance(Thing, speedups.EntityMetaBase) and isinstance(Thing, type)
    obj = speedups.EntityBase.__new__(Other)
    session = speedups.SessionBase(None)
    session.maps[Other] = {3: obj}
    obj._init_state_(speedups.CacheBase(session), speedups.LOADED)
    token = speedups.current_session.set(session)
    try:
        assert Other[3] is obj and Thing[3] == (Thing, 3)
    finally:
        speedups.current_session.reset(token)
    gone = weakref.ref(Other)
    del Other, obj, session
    gc.collect()
    assert gone() is None


def test_lookup_binds_as_a_metaclass_method(speedups: ModuleType) -> None:
    """``lookup`` installed as ``__getitem__`` on a metaclass receives the class."""

    class Meta(type):
        __getitem__ = speedups.lookup

    class Thing(metaclass=Meta):
        @classmethod
        def _lookup_miss_(cls, key: Any) -> Any:
            return cls, key

    assert Thing[3] == (Thing, 3)


# --- materialize -----------------------------------------------------------------------------


def test_column_values_are_the_stored_values_through_their_converters(model: Model) -> None:
    """``column_values``: one tuple per object, converted values, None for a value not loaded or None."""
    a = model.new(model.speedups.LOADED, id=1, name="a", age=None)
    b = model.new(model.speedups.MODIFIED, id=2, name="b", age=7)
    columns = [model.column(n) for n in ("id", "name", "age", "note")]
    rows = model.speedups.column_values([a, b], columns, [None, str.upper, lambda v: v * 10, repr])
    assert rows == [(1, "A", None, None), (2, "B", 70, None)]
    assert all(type(row) is tuple for row in rows)
    assert a._rbits_ == 0 and model.calls == []  # no tracked read, no load hook


def test_column_values_known_gives_the_original_of_a_written_column(model: Model) -> None:
    """``column_values(known=True)``: a column written since it was loaded gives its original value."""
    sp = model.speedups
    token = sp.current_session.set(model.session)
    try:
        obj = model.new(sp.LOADED, id=1, name="a", age=3)
        obj.name = "b"
        columns = [model.column(n) for n in ("id", "name", "age")]
        assert sp.column_values([obj], columns, [None] * 3) == [(1, "b", 3)]
        assert sp.column_values([obj], columns, [None] * 3, known=True) == [(1, "a", 3)]
    finally:
        sp.current_session.reset(token)


def test_loaded_bits_are_the_bits_of_the_filled_slots(model: Model) -> None:
    """``loaded_bits``: the bits of the columns holding a value, None included."""
    obj = model.new(model.speedups.CREATED, name="a", note=None)
    assert model.speedups.loaded_bits(obj, model.columns) == 0b10010
    assert model.speedups.loaded_bits(obj, model.columns[:2]) == 0b10


def test_checked_columns_are_the_read_checked_columns_with_known_nullness(model: Model) -> None:
    """``checked_columns``: (index, known value is None) of the read columns in the mask, in column order;
    a column written since it was read is judged by its original value."""
    sp = model.speedups
    token = sp.current_session.set(model.session)
    try:
        obj = model.new(sp.LOADED, id=1, name="a", age=None, note="n")
        obj.note, obj.age, obj.name  # noqa: B018 - reads set the read bits
        obj.age = 4
        assert sp.checked_columns(obj, model.columns, -1) == ((1, False), (2, True), (4, False))
        assert sp.checked_columns(obj, model.columns, 0b10000) == ((4, False),)
        assert sp.checked_columns(model.new(sp.LOADED, id=2), model.columns, -1) == ()
    finally:
        sp.current_session.reset(token)


def test_mark_saved_all_records_and_resets_the_state(model: Model) -> None:
    """``mark_saved_all``: (obj, status, originals, write bits) recorded; saved objects are LOADED and
    clean, deleted ones GONE with their state kept."""
    sp = model.speedups
    token = sp.current_session.set(model.session)
    try:
        obj = model.new(sp.LOADED, id=1, name="a")
        obj.name = "b"
        gone = model.new(sp.DELETED, id=2, name="x")
        saving: list[Any] = []
        sp.mark_saved_all([obj], sp.MODIFIED, saving)
        sp.mark_saved_all([gone], sp.DELETED, saving)
        assert saving == [(obj, sp.MODIFIED, {1: "a"}, 0b10), (gone, sp.DELETED, None, 0)]
        assert (obj._status_, obj._wbits_, obj._orig_) == (sp.LOADED, 0, None)
        assert gone._status_ == sp.GONE
    finally:
        sp.current_session.reset(token)


def test_shape_runs_group_consecutive_objects_of_one_statement_shape(model: Model) -> None:
    """``shape_runs``: consecutive objects with the same status, class, column bits and checks share a
    run; a change of any starts the next; objects with no pending statement are left out."""
    sp = model.speedups
    model.entity._columns_ = tuple(model.columns)
    model.entity._attrs_ = tuple(model.columns)
    model.entity._check_mask_ = 0b11110
    token = sp.current_session.set(model.session)
    try:
        new_a = model.new(sp.CREATED, name="a", age=1)
        new_b = model.new(sp.CREATED, name="b", age=2)
        new_c = model.new(sp.CREATED, name="c")
        loaded = model.new(sp.LOADED, id=9, name="z")
        upd_a = model.new(sp.LOADED, id=1, name="a", age=1)
        upd_b = model.new(sp.LOADED, id=2, name="b", age=None)
        upd_c = model.new(sp.LOADED, id=3, name="c", age=3)
        for obj, age in ((upd_a, 5), (upd_b, 6), (upd_c, 7)):
            obj.age = age
        upd_c.name  # noqa: B018 - a read column: its UPDATE checks it
        gone = model.new(sp.DELETED, id=4, name="d")
        objs = [new_a, new_b, new_c, loaded, upd_a, upd_b, upd_c, gone]
        runs = sp.shape_runs(objs, True)
        assert runs == [
            ((sp.CREATED, model.entity, 0b110, ()), [new_a, new_b]),
            ((sp.CREATED, model.entity, 0b10, ()), [new_c]),
            ((sp.MODIFIED, model.entity, 0b100, ()), [upd_a, upd_b]),
            ((sp.MODIFIED, model.entity, 0b100, ((1, False),)), [upd_c]),
            ((sp.DELETED, model.entity, 0, ()), [gone]),
        ]
        assert [shape[3] for shape, _ in sp.shape_runs(objs, False)] == [()] * 4
        assert sp.shape_runs([], True) == []
    finally:
        sp.current_session.reset(token)


def test_shape_runs_split_on_which_checked_values_are_known_as_none(model: Model) -> None:
    """UPDATEs of equal written columns share a run only while the same checked columns were read
    and the same of them are known as None (a written one by its original value)."""
    sp = model.speedups
    model.entity._columns_ = tuple(model.columns)
    model.entity._attrs_ = tuple(model.columns)
    model.entity._check_mask_ = 0b11110
    objs = [model.new(sp.LOADED, id=i, name=name, score=1.0) for i, name in enumerate("ab", 1)]
    objs += [model.new(sp.LOADED, id=3, name=None, score=1.0)]
    objs += [model.new(sp.LOADED, id=i, name=name, score=1.0) for i, name in ((4, None), (5, "y"), (6, "w"))]
    for obj in objs:
        obj.name  # noqa: B018 - a read checked column
        obj.score = 2.0
    for obj, name in zip(objs[3:], "zxv", strict=True):
        obj.name = name
    runs = sp.shape_runs(objs, True)
    assert runs == [
        ((sp.MODIFIED, model.entity, 0b1000, ((1, False),)), objs[:2]),
        ((sp.MODIFIED, model.entity, 0b1000, ((1, True),)), [objs[2]]),
        ((sp.MODIFIED, model.entity, 0b1010, ((1, True),)), [objs[3]]),
        ((sp.MODIFIED, model.entity, 0b1010, ((1, False),)), objs[4:]),
    ]
    assert [shape for shape, _ in runs] == [
        (sp.MODIFIED, model.entity, obj._wbits_, sp.checked_columns(obj, model.columns, 0b11110))
        for obj in (objs[0], objs[2], objs[3], objs[4])
    ]


def test_plain_check_stores_values_that_pass_it_without_the_validate_hook(model: Model) -> None:
    """A written value of the column's own type that passes ``plain_check`` is stored as given; any
    other value goes through ``_validate_`` (the test hook strips text)."""
    sp = model.speedups
    name, age, score = model.column("name"), model.column("age"), model.column("score")
    assert name.plain_check is None
    name.plain_check = (3, False, 4, True)
    age.plain_check = (1, False, -5, 100)
    score.plain_check = (2, False, None, None)
    assert name.plain_check == (3, False, 4, True)
    obj = model.new(sp.LOADED, id=1, name="start", age=1, score=0.5)
    written = [
        ("name", "abc"), ("name", " ab"), ("name", "ab\t"), ("name", "abcde"), ("name", ""), ("name", "é"),
        ("name", "a\x00"), ("name", 5), ("age", 100), ("age", -5), ("age", 101), ("age", 2**70), ("age", True),
        ("age", 3.0), ("score", 1.5), ("score", float("inf")), ("score", 2),
    ]  # fmt: skip
    for attr, value in written:
        setattr(obj, attr, value)
    validated = [call[1:] for call in model.calls if call[0] == "validate"]
    assert validated == [
        ("name", " ab"), ("name", "ab\t"), ("name", "abcde"), ("name", ""), ("name", "é"), ("name", "a\x00"),
        ("name", 5), ("age", 101), ("age", 2**70), ("age", True), ("age", 3.0), ("score", float("inf")),
        ("score", 2),
    ]  # fmt: skip
    assert (obj.name, obj.age, obj.score) == (5, 3.0, 2)
    name.plain_check = None
    model.calls.clear()
    obj.name = "abc"
    assert model.calls == [("validate", "name", "abc")]


def test_passes_plain_answers_whether_a_value_passes_plain_check(model: Model) -> None:
    """``passes_plain(value)``: True exactly for the values a write stores without ``_validate_``
    (see the test above), False for every value while the column has no ``plain_check``."""
    name, age, score = model.column("name"), model.column("age"), model.column("score")
    assert not name.passes_plain("abc")
    name.plain_check = (3, False, 4, True)
    age.plain_check = (1, False, -5, 100)
    score.plain_check = (2, False, None, None)
    passing = [(name, "abc"), (age, 100), (age, -5), (score, 1.5)]
    failing = [
        (name, " ab"), (name, "abcde"), (name, ""), (name, "é"), (name, "a\x00"), (name, 5), (age, 101),
        (age, 2**70), (age, True), (age, 3.0), (score, float("inf")), (score, 2), (age, None),
    ]  # fmt: skip
    assert all(column.passes_plain(value) for column, value in passing)
    assert not any(column.passes_plain(value) for column, value in failing)


def test_plain_params_bind_values_that_pass_their_columns_plain_checks(model: Model) -> None:
    """``plain_params``: the values as given, None values left out, when every other value passes its
    column's ``plain_check``; None as soon as one does not (or its column has no check)."""
    sp = model.speedups
    name, age, score = model.column("name"), model.column("age"), model.column("score")
    name.plain_check = (3, False, 4, True)
    age.plain_check = (1, False, -5, 100)
    columns = [name, age, score]
    assert sp.plain_params(columns[:2], ["abc", 7]) == ["abc", 7]
    assert sp.plain_params(columns[:2], [None, 100]) == [100]
    assert sp.plain_params(columns, [None, None, None]) == []
    for values in (["abcde", 7], [" ab", 7], ["é", 7], ["abc", 101], ["abc", True], ["abc", 7.0]):
        assert sp.plain_params(columns[:2], values) is None, values
    assert sp.plain_params(columns, ["abc", 7, 1.5]) is None  # score has no plain check
    score.plain_check = (2, False, None, None)
    assert sp.plain_params(columns, ["abc", 7, 1.5]) == ["abc", 7, 1.5]
    assert sp.plain_params(columns, ["abc", 7, float("nan")]) is None


def test_keyword_sql_binds_known_shapes_as_given(model: Model) -> None:
    """``keyword_sql``: the text of the values' shape (keywords in order, which are None) for the
    dialect, with the values that pass their plain checks then the constants; None for a shape not
    known, another dialect, an entry that does not bind as given, or a value that does not pass."""
    sp = model.speedups
    name, age = model.column("name"), model.column("age")
    name.plain_check = (3, False, 4, True)
    age.plain_check = (1, False, -5, 100)
    dialect, other = object(), object()
    known = {
        (("name", "age"), (False, False)): (dialect, "SELECT 1", (name, age), True, (2,)),
        (("name", "age"), (True, False)): (dialect, "SELECT 2", (name, age), True, (2,)),
        (("age",), (False,)): (dialect, "SELECT 3", (age,), False, (2,)),
    }
    assert sp.keyword_sql(known, {"name": "abc", "age": 7}, dialect) == ("SELECT 1", ["abc", 7, 2])
    assert sp.keyword_sql(known, {"name": None, "age": 7}, dialect) == ("SELECT 2", [7, 2])
    assert sp.keyword_sql(known, {"age": 7, "name": "abc"}, dialect) is None  # another order
    assert sp.keyword_sql(known, {"name": "abc", "age": 7}, other) is None
    assert sp.keyword_sql(known, {"name": "abcde", "age": 7}, dialect) is None  # too long: validated
    assert sp.keyword_sql(known, {"age": 7}, dialect) is None  # converted, not as given
    assert sp.keyword_sql({}, {}, dialect) is None


def test_match_keys_take_rows_in_order_or_by_their_values(speedups: ModuleType) -> None:
    """``match_keys``: returned (key, *values) rows in the rows' order with ascending keys give those
    keys; any other order is matched by values, equal rows taking ascending keys; a value stored
    differently or a missing row gives None."""
    rows = [("a", 1), ("b", 2), ("a", 1)]
    assert speedups.match_keys(rows, [(10, "a", 1), (11, "b", 2), (12, "a", 1)]) == [10, 11, 12]
    assert speedups.match_keys(rows, [(12, "a", 1), (11, "b", 2), (10, "a", 1)]) == [10, 11, 12]
    assert speedups.match_keys(rows, [(11, "a", 1), (10, "b", 2), (12, "a", 1)]) == [11, 10, 12]
    assert speedups.match_keys(rows, [(10, "a", 1), (11, "b", 2), (12, "a", 1.0)]) == [10, 11, 12]
    assert speedups.match_keys(rows, [(10, "a", 1), (11, "b", 2), (12, "a", "1")]) is None
    assert speedups.match_keys(rows, [(10, "a", 1), (11, "b", 2)]) is None
    assert speedups.match_keys(rows, [(10, "a", 1), (11, "b"), (12, "a", 1)]) is None
    assert speedups.match_keys([([1],), ([2],)], [(2, [2]), (1, [1])]) is None  # unhashable, out of order
    assert speedups.match_keys([("a",), ("b",)], [("k", "b"), (1, "a")]) is None  # keys that do not sort
    assert speedups.match_keys([], []) == []


def test_register_keys_stores_keys_and_maps_them_until_a_clash(model: Model) -> None:
    """``register_keys``: each object gets its key in the column and the map; a key the map holds for
    another object stops it there and gives that index."""
    sp = model.speedups
    a, b, c = (model.new(sp.CREATED, name=n) for n in "abc")
    imap: dict[Any, Any] = {}
    assert sp.register_keys([a, b], [1, 2], model.column("id"), imap) == -1
    assert imap == {1: a, 2: b} and (a.id, b.id) == (1, 2)
    assert sp.register_keys([c, a], [3, 2], model.column("id"), imap) == 1
    assert imap == {1: a, 2: b, 3: c} and a.id == 1
    with pytest.raises(ValueError, match="2 objects but 1 keys"):
        sp.register_keys([a, b], [1], model.column("id"), imap)


def test_record_undo_all_keeps_the_first_state_and_adds_later_originals(model: Model) -> None:
    """``record_undo_all``: an object's first flushed state is kept; later flushes add their write bits
    and the originals of columns the first did not write."""
    sp = model.speedups
    a, b = model.new(sp.LOADED, id=1), model.new(sp.LOADED, id=2)
    undo: dict[Any, Any] = {b: (sp.CREATED, None, 0b11)}
    sp.record_undo_all(
        undo,
        [
            (a, sp.MODIFIED, {1: "x"}, 0b10),
            (a, sp.MODIFIED, {1: "y", 2: 5}, 0b110),
            (b, sp.MODIFIED, {3: 1}, 0b1000),
        ],
    )
    assert undo == {a: (sp.MODIFIED, {1: "x", 2: 5}, 0b110), b: (sp.CREATED, {3: 1}, 0b1011)}


def test_materialize_creates_loaded_objects_in_the_map(model: Model) -> None:
    """New rows become LOADED objects of the class, with every value and no bits, in row order."""
    rows = [(1, "Ann", 30, 1.5, None), (2, "Bo", 40, 2.5, "x")]
    objs = model.materialize(rows)
    assert [type(o) for o in objs] == [model.entity] * 2
    assert model.session.maps[model.entity] == {1: objs[0], 2: objs[1]}
    for obj, row in zip(objs, rows, strict=True):
        assert obj._cache_ is model.cache and obj._status_ == model.speedups.LOADED
        assert (obj._rbits_, obj._wbits_, obj._orig_) == (0, 0, None)
        assert tuple(c.get_raw(obj, "absent") for c in model.columns) == row
    assert model.calls == []


def test_materialize_returns_known_objects(model: Model) -> None:
    """A row whose key is in the map gives the same object back (also twice in one result)."""
    (first,) = model.materialize([(1, "Ann", 30, 1.5, None)])
    again = model.materialize([(1, "Ann", 30, 1.5, None), (1, "Ann", 30, 1.5, None)])
    assert again == [first, first] and len(model.session.maps[model.entity]) == 1


def test_materialize_accepts_any_iterable_of_sequences(model: Model) -> None:
    """Rows may come from an iterator and be lists; extra values past the columns are ignored."""
    objs = model.materialize(iter([[1, "Ann", 30, 1.5, None, "extra"]]))
    assert model.column("note").is_loaded(objs[0]) and model.column("name").get_raw(objs[0]) == "Ann"


def test_materialize_applies_converters(model: Model) -> None:
    """Converters run on non-None values before the map lookup; None skips the converter."""
    converters = [int, None, int, float, str.upper]
    (obj,) = model.materialize([("1", "Ann", "30", 2, None)], converters=converters)
    assert model.session.maps[model.entity] == {1: obj}
    assert [c.get_raw(obj) for c in model.columns] == [1, "Ann", 30, 2.0, None]
    (same,) = model.materialize([("1", "Ann", "30", 2, "n")], converters=converters)
    assert same is obj and model.column("note").get_raw(obj) == "N"


def test_materialize_composite_keys(speedups: ModuleType) -> None:
    """With ``npk=2`` the map key is the tuple of the first two values."""
    model = make_model(speedups, names=("a", "b", "v"))
    objs = model.materialize([(1, 1, "x"), (1, 2, "y"), (1, 1, "z")], npk=2)
    assert model.session.maps[model.entity] == {(1, 1): objs[0], (1, 2): objs[1]}
    assert objs[2] is objs[0] and model.column("v").get_raw(objs[0]) == "z"


def test_materialize_rejects_a_key_of_no_columns(model: Model) -> None:
    """``npk`` below 1 is an error in both twins."""
    with pytest.raises(ValueError):
        model.materialize([(1, "Ann", 30, 1.5, None)], npk=0)


def test_materialize_refreshes_unread_values(model: Model) -> None:
    """Values nobody read are replaced by the database's; unloaded ones are filled in."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann")
    model.session.maps[model.entity] = {1: obj}
    model.materialize([(1, "Bo", 30, 1.5, None)])
    assert [c.get_raw(obj) for c in model.columns] == [1, "Bo", 30, 1.5, None]
    assert model.calls == []


def test_materialize_keeps_values_written_in_the_session(model: Model) -> None:
    """A written value survives a reload when the database still has the original."""
    (obj,) = model.materialize([(1, "Ann", 30, 1.5, None)])
    obj.name = "Bo"
    model.materialize([(1, "Ann", 31, 1.5, None)])
    assert obj.name == "Bo" and model.column("age").get_raw(obj) == 31


def test_materialize_raises_on_unrepeatable_read(model: Model) -> None:
    """A column read in this session whose database value changed goes to ``_unrepeatable_``."""
    (obj,) = model.materialize([(1, "Ann", 30, 1.5, None)])
    assert obj.name == "Ann"
    model.materialize([(1, "Ann", 31, 1.5, None)])
    with pytest.raises(Unrepeatable):
        model.materialize([(1, "Bo", 30, 1.5, None)])
    assert model.calls[-1] == ("unrepeatable", "name", "Ann", "Bo")


def test_materialize_checks_written_columns_against_their_original(model: Model) -> None:
    """Read then written: the original loaded value is what the database must still hold."""
    (obj,) = model.materialize([(1, "Ann", 30, 1.5, None)])
    assert obj.name == "Ann"
    obj.name = "Bo"
    model.materialize([(1, "Ann", 30, 1.5, None)])
    with pytest.raises(Unrepeatable):
        model.materialize([(1, "Cy", 30, 1.5, None)])
    assert model.calls[-1] == ("unrepeatable", "name", "Ann", "Cy")


def test_materialize_check_mask_excludes_columns(model: Model) -> None:
    """Columns outside ``check_mask`` (floats, volatile ones) are refreshed without a check."""
    (obj,) = model.materialize([(1, "Ann", 30, 1.5, None)])
    assert obj.score == 1.5
    model.materialize([(1, "Ann", 30, 2.5, None)], check_mask=0b10111)
    assert model.column("score").get_raw(obj) == 2.5 and model.calls == []


def test_materialize_rejects_unbound_columns(speedups: ModuleType) -> None:
    """Every column must be bound to a slot before rows are turned into objects."""
    model = make_model(speedups)
    with pytest.raises(AttributeError):
        speedups.materialize(model.entity, model.cache, {}, [speedups.Column()], [None], 1, -1, [])


@pytest.fixture
def gc_state() -> Any:
    """Restores the cyclic GC's enabled state after a test that changes it."""
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


@pytest.mark.parametrize("enabled", [True, False], ids=["gc-on", "gc-off"])
def test_materialize_pauses_the_gc_for_its_loop_in_the_pure_twin(
    model: Model, gc_state: None, enabled: bool
) -> None:
    """The pure twin's cyclic GC is off while rows become objects (the compiled build leaves it as it
    is: its new objects are untracked), and in the state it was in afterwards."""
    compiled = model.speedups.__name__ == "nextorm._speedups"
    seen: list[bool] = []

    def convert(value: Any) -> Any:
        seen.append(gc.isenabled())
        return value

    if enabled:
        gc.enable()
    else:
        gc.disable()
    model.materialize(
        [(1, "Ann", 30, 1.5, None), (1, "Bo", 30, 1.5, None)], converters=[convert] + [None] * 4
    )
    assert seen == [compiled and enabled] * 2 and gc.isenabled() is enabled


def test_materialize_leaves_new_objects_untracked_until_track(model: Model) -> None:
    """The compiled ``materialize`` leaves the objects it creates untracked by the cyclic GC (the
    identity map holds them); ``track`` gives them back. The pure twin's objects stay tracked."""
    compiled = model.speedups.__name__ == "nextorm._speedups"
    known = model.new(model.speedups.LOADED, id=1, name="Ann", age=30, score=1.5, note=None)
    model.session.maps.setdefault(model.entity, {})[1] = known
    objs = model.materialize([(1, "Ann", 30, 1.5, None), (2, "Bo", 31, 2.5, None)])
    assert objs[0] is known and gc.is_tracked(known)
    assert gc.is_tracked(objs[1]) is not compiled
    model.speedups.track(iter([objs[1], "not an entity", None]))
    assert gc.is_tracked(objs[1])
    model.speedups.track(objs)
    assert all(gc.is_tracked(obj) for obj in objs)
    with pytest.raises(TypeError):
        model.speedups.track(None)


def test_only_mapped_is_whether_the_maps_alone_hold_their_objects(model: Model) -> None:
    """``only_mapped``: True when no object of the maps is held anywhere else, False as soon as one
    is (by a variable here, a list, another map), and for anything but dicts."""
    only_mapped = model.speedups.only_mapped
    first = model.new(model.speedups.LOADED, id=1, name="Ann", age=30, score=1.5, note=None)
    people = {1: first, 2: model.new(model.speedups.LOADED, id=2, name="Bo", age=31, score=2.5, note=None)}
    others = {3: model.new(model.speedups.LOADED, id=3, name="Cy", age=32, score=3.5, note=None)}
    assert only_mapped([people, others]) is False  # `first` holds Ann
    del first
    assert only_mapped([people, others]) is True
    assert only_mapped([]) is True and only_mapped([{}]) is True
    kept = [others[3]]
    assert only_mapped([people, others]) is False and only_mapped([people]) is True
    kept.clear()
    shared = {2: people[2]}
    assert only_mapped([people]) is False and only_mapped([others]) is True
    del shared
    assert only_mapped([people, others]) is True
    assert only_mapped([list(people.values())]) is False
    with pytest.raises(TypeError):
        only_mapped(None)


@pytest.mark.parametrize("enabled", [True, False], ids=["gc-on", "gc-off"])
def test_flush_folds_pause_the_gc_and_restore_it(model: Model, gc_state: None, enabled: bool) -> None:
    """``shape_runs``, ``mark_saved_all`` and ``record_undo_all`` run with the cyclic GC off and
    leave it as it was, also when their input fails part-way."""
    sp = model.speedups
    model.entity._columns_ = tuple(model.columns)
    model.entity._attrs_ = tuple(model.columns)
    model.entity._check_mask_ = 0
    seen: list[bool] = []

    def watched(items: list[Any], fail: bool = False) -> Any:
        for item in items:
            seen.append(gc.isenabled())
            yield item
        if fail:
            raise OSError("input lost")

    if enabled:
        gc.enable()
    else:
        gc.disable()
    token = sp.current_session.set(model.session)
    try:
        obj = model.new(sp.LOADED, id=1, name="a")
        obj.name = "b"
        assert [group for _, group in sp.shape_runs(watched([obj]), True)] == [[obj]]
        saving: list[Any] = []
        sp.mark_saved_all(watched([obj]), sp.MODIFIED, saving)
        undo: dict[Any, Any] = {}
        sp.record_undo_all(undo, watched(saving))
        assert undo == {obj: (sp.MODIFIED, {1: "a"}, 0b10)}
        with pytest.raises(OSError):
            sp.shape_runs(watched([obj], fail=True), True)
        with pytest.raises(OSError):
            sp.mark_saved_all(watched([obj], fail=True), sp.MODIFIED, [])
        with pytest.raises(OSError):
            sp.record_undo_all({}, watched(saving, fail=True))
    finally:
        sp.current_session.reset(token)
    assert seen == [False] * 6 and gc.isenabled() is enabled


def _failing_rows() -> Any:
    """Rows whose iterator fails after the first one, as a driver's cursor can."""
    yield (2, "Cy", 30, 1.5, None)
    raise OSError("connection lost")


@pytest.mark.parametrize("failure", ["converter", "hook", "rows"])
@pytest.mark.parametrize("enabled", [True, False], ids=["gc-on", "gc-off"])
def test_materialize_restores_the_gc_when_the_loop_raises(
    model: Model, gc_state: None, enabled: bool, failure: str
) -> None:
    """A converter, an ``_unrepeatable_`` hook or the rows iterator raising leaves the GC as it was."""
    (obj,) = model.materialize([(1, "Ann", 30, 1.5, None)])
    assert obj.name == "Ann"
    if enabled:
        gc.enable()
    else:
        gc.disable()
    with pytest.raises((ValueError, Unrepeatable, OSError)) as raised:
        if failure == "converter":
            model.materialize([(1, "Ann", "x", 1.5, None)], converters=[None, None, int, None, None])
        elif failure == "hook":
            model.materialize([(1, "Bo", 30, 1.5, None)])
        else:
            model.materialize(_failing_rows())
    assert type(raised.value) is {"converter": ValueError, "hook": Unrepeatable, "rows": OSError}[failure]
    assert gc.isenabled() is enabled


# --- raw access ------------------------------------------------------------------------------


def test_raw_access_agrees_with_the_slot(model: Model) -> None:
    """get_raw/set_raw/clear_raw/is_loaded see exactly what the ``__slots__`` member sees."""
    column, member = model.column("name"), model.members[1]
    obj = model.new(model.speedups.LOADED)
    assert not column.is_loaded(obj) and column.get_raw(obj) is None and column.get_raw(obj, 0) == 0
    with pytest.raises(AttributeError):
        member.__get__(obj)
    column.set_raw(obj, "Ann")
    assert member.__get__(obj) == "Ann" and column.is_loaded(obj)
    member.__set__(obj, "Bo")
    assert column.get_raw(obj) == "Bo"
    column.clear_raw(obj)
    column.clear_raw(obj)
    with pytest.raises(AttributeError):
        member.__get__(obj)
    assert not column.is_loaded(obj)
    assert (obj._rbits_, obj._wbits_, obj._status_, model.calls) == (0, 0, model.speedups.LOADED, [])


def test_set_raw_stores_none(model: Model) -> None:
    """None is a loaded value, not an empty slot."""
    obj = model.new(model.speedups.LOADED)
    model.column("note").set_raw(obj, None)
    assert model.column("note").is_loaded(obj) and obj.note is None


# --- references ------------------------------------------------------------------------------


def _churn(model: Model, rounds: int) -> None:
    """Create, load, merge, write, reload, clear and drop objects ``rounds`` times."""
    speedups = model.speedups
    for i in range(rounds):
        rows = [(n, f"name{n}", n, n * 0.5, None) for n in range(50)]
        objs = model.materialize(rows)
        for obj in objs[:10]:
            obj.name = f"x{i}"
            obj.age = -1
            _ = obj.id, obj.score
        model.materialize(rows, converters=[None, str, None, None, None], check_mask=0)
        _ = model.entity[3], model.entity[99]
        extra = speedups.EntityBase.__new__(model.entity)
        extra._init_state_(model.cache, speedups.CREATED)
        for column in model.columns:
            column.set_raw(extra, [i])
            column.clear_raw(extra)
            column.set_raw(extra, (i,))
        model.session.maps.clear()
        model.cache.dirty.clear()
        model.calls.clear()


def test_hot_path_does_not_leak(model: Model) -> None:
    """Repeated create/materialize/set cycles keep allocations, gc objects and refcounts flat."""
    _churn(model, 30)
    gc.collect()
    objects = len(gc.get_objects())
    total = getattr(sys, "gettotalrefcount", lambda: 0)()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        _churn(model, 200)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 64 * 1024, after.compare_to(before, "lineno")[:5]
    assert len(gc.get_objects()) - objects < 100
    if total:
        assert sys.gettotalrefcount() - total < 1000


# --- differential ----------------------------------------------------------------------------

DIFF_COLUMNS = tuple(f"c{i}" for i in range(66))
DIFF_INDEXES = (1, 2, 3, 64, 65)  # column 0 is the key; 64 and 65 take the wide path
DIFF_VALUES = (None, 0, 1, 2, "a", "b", 1.0, float("nan"))
DIFF_ODD_KEYS = (True, False, 1.0, IntKey(2), "1", (1,), (1, 2), [1])  # keys the map must not answer

operation = st.one_of(
    st.tuples(st.just("read"), st.integers(0, 3), st.sampled_from(DIFF_INDEXES)),
    st.tuples(
        st.just("write"), st.integers(0, 3), st.sampled_from(DIFF_INDEXES), st.sampled_from(DIFF_VALUES)
    ),
    st.tuples(
        st.just("set_raw"), st.integers(0, 3), st.sampled_from(DIFF_INDEXES), st.sampled_from(DIFF_VALUES)
    ),
    st.tuples(st.just("clear"), st.integers(0, 3), st.sampled_from(DIFF_INDEXES)),
    st.tuples(st.just("status"), st.integers(0, 3), st.integers(1, 5)),
    st.tuples(
        st.just("flag"),
        st.sampled_from(DIFF_INDEXES),
        st.sampled_from(("tracked", "readonly")),
        st.booleans(),
    ),
    st.tuples(st.just("alive"), st.booleans()),
    st.tuples(st.just("current"), st.sampled_from(("own", "other", "none"))),
    st.tuples(st.just("lookup"), st.one_of(st.integers(0, 4), st.sampled_from(DIFF_ODD_KEYS))),
    st.tuples(
        st.just("load"),
        st.lists(
            st.tuples(st.integers(0, 4), st.lists(st.sampled_from(DIFF_VALUES), min_size=5, max_size=5))
        ),
        st.sampled_from((-1, 0, 0b1010, (1 << 65) | 2)),
        st.booleans(),
    ),
)


def run_program(speedups: ModuleType, program: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``program`` against one twin; the trace holds every result, hook call and object state."""
    model = make_model(speedups, names=DIFF_COLUMNS)
    imap = model.session.maps[model.entity] = {}
    others = {"own": model.session, "other": speedups.SessionBase(None), "none": None}
    handles: list[Any] = []
    trace: list[Any] = []

    def describe(value: Any) -> Any:
        if isinstance(value, speedups.EntityBase):
            return ("obj", handles.index(value) if value in handles else -1)
        return repr(value)

    def apply(op: tuple[Any, ...]) -> Any:
        kind = op[0]
        if kind == "read":
            return getattr(handles[op[1] % len(handles)], DIFF_COLUMNS[op[2]]) if handles else None
        if kind == "write" and handles:
            setattr(handles[op[1] % len(handles)], DIFF_COLUMNS[op[2]], op[3])
        elif kind == "set_raw" and handles:
            model.columns[op[2]].set_raw(handles[op[1] % len(handles)], op[3])
        elif kind == "clear" and handles:
            model.columns[op[2]].clear_raw(handles[op[1] % len(handles)])
        elif kind == "status" and handles:
            handles[op[1] % len(handles)]._status_ = op[2]
        elif kind == "flag":
            setattr(model.columns[op[1]], op[2], op[3])
        elif kind == "alive":
            model.cache.is_alive = op[1]
        elif kind == "current":
            speedups.current_session.set(others[op[1]])
        elif kind == "lookup":
            return describe(model.entity[op[1]])
        elif kind == "load":
            rows = [(pk, *values) for pk, values in op[1]]
            converters = [None, str, None, None, None] if op[3] else None
            narrow = model.columns[:1] + [model.columns[i] for i in DIFF_INDEXES]
            objs = speedups.materialize(
                model.entity, model.cache, imap, narrow, converters or [None] * 6, 1, op[2], rows
            )
            handles.extend(obj for obj in objs if obj not in handles)
            return [describe(obj) for obj in objs]
        return None

    def state(obj: Any) -> Any:
        raw = [repr(model.columns[i].get_raw(obj, "<empty>")) for i in (0, *DIFF_INDEXES)]
        orig = None if obj._orig_ is None else sorted((k, repr(v)) for k, v in obj._orig_.items())
        return (obj._status_, obj._rbits_, obj._wbits_, orig, raw)

    def run() -> None:
        speedups.current_session.set(model.session)
        for op in program:
            model.calls.clear()
            try:
                result: Any = apply(op)
            except Exception as exc:
                result = ("raised", type(exc).__name__)
            calls = [tuple(describe(part) for part in call) for call in model.calls]
            dirty = [describe(obj) for obj in model.cache.dirty]
            trace.append((op, result, calls, dirty, [state(obj) for obj in handles]))

    copy_context().run(run)
    return trace


@pytest.mark.c_extension
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(program=st.lists(operation, max_size=25))
def test_twins_agree_on_random_programs(
    twins: tuple[ModuleType, ModuleType], program: list[tuple[Any, ...]]
) -> None:
    """Random reads, writes, loads, lookups and state changes give the same trace on both twins."""
    compiled, pure = twins
    assert run_program(compiled, program) == run_program(pure, program)


# --- attribute_dict: to_dict()'s one pass over the attributes --------------------------------------


def test_attribute_dict_reads_each_attribute_as_a_tracked_read(model: Model) -> None:
    """Values come in the order given, read bits are set, an unloaded value goes to ``_load_``."""
    obj = model.new(model.speedups.LOADED, id=1, name="Ann", age=30)
    columns = [model.column("age"), model.column("id"), model.column("name"), model.column("note")]
    result = model.speedups.attribute_dict(obj, ["a", "i", "n", "x"], columns)
    assert list(result.items()) == [("a", 30), ("i", 1), ("n", "Ann"), ("x", ("loaded", "note"))]
    assert obj._rbits_ == 0b111 and obj._wbits_ == 0
    assert model.calls == [("load", "note")]


def test_attribute_dict_keys_are_the_names_given_verbatim(speedups: ModuleType) -> None:
    """Of slots read at once, any name keys its attribute's value: quotes, a newline, a non-string."""
    entity = type("Slotted", (speedups.EntityBase,), {"__slots__": ("_v_a_", "_v_b_")})
    columns = []
    for index, slot in enumerate(("_v_a_", "_v_b_")):
        column = speedups.Column()
        column._bind_slot_(entity.__dict__[slot], index)
        setattr(entity, slot[3], column)
        columns.append(column)
    obj = speedups.EntityBase.__new__(entity)
    obj._init_state_(speedups.CacheBase(speedups.SessionBase(None)), speedups.LOADED)
    columns[0].set_raw(obj, 1)
    columns[1].set_raw(obj, "Ann")
    names = ("it's", 'say "hi"\n')
    assert speedups.attribute_dict(obj, names, columns) == {"it's": 1, 'say "hi"\n': "Ann"}
    assert obj._rbits_ == 0b11
    assert speedups.attribute_dict(obj, (1, ("t",)), columns) == {1: 1, ("t",): "Ann"}


def test_attribute_dict_takes_the_paths_of_dead_and_deleted_objects(model: Model) -> None:
    """A deleted object goes to ``_deleted_``, any object of a finished session to ``_read_after_session_``."""
    deleted = model.new(model.speedups.DELETED, id=1, name="Ann")
    assert model.speedups.attribute_dict(deleted, ("name",), (model.column("name"),)) == {
        "name": ("deleted", "name")
    }
    alive = model.new(model.speedups.LOADED, id=2, name="Bob")
    model.cache.is_alive = False
    assert model.speedups.attribute_dict(alive, ("name",), (model.column("name"),)) == {
        "name": ("after", "name")
    }


def test_attribute_dict_calls_an_overriding_get(speedups: ModuleType) -> None:
    """A descriptor whose class overrides ``__get__`` is read through it, as ``obj.attr`` would be."""

    class Doubled(speedups.Column):
        def __get__(self, obj: Any, cls: Any = None) -> Any:
            return ("doubled", obj, cls)

    class Plain:
        def __get__(self, obj: Any, cls: Any = None) -> Any:
            return ("plain", cls)

    class Thing:
        pass

    thing = Thing()
    result = speedups.attribute_dict(thing, ("d", "p"), (Doubled(), Plain()))
    assert result == {"d": ("doubled", thing, Thing), "p": ("plain", Thing)}


def test_attribute_dict_refuses_names_and_attributes_of_different_lengths(speedups: ModuleType) -> None:
    """Names and attributes pair up one to one."""
    with pytest.raises(ValueError, match="2 names but 1 attributes"):
        speedups.attribute_dict(object(), ("a", "b"), (speedups.Column(),))


# --- a class attribute that is not found -------------------------------------------------------------


def test_missing_class_attribute_goes_to_the_hook(speedups: ModuleType) -> None:
    """``cls.name`` not found is ``cls._missing_attr_(name)``; without the hook, AttributeError."""

    class Meta(speedups.EntityMetaBase):
        def _missing_attr_(cls, name: str) -> Any:
            if name == "known":
                return ("hook", cls.__name__)
            raise AttributeError(f"hook: no {name}")

    hooked = Meta("Hooked", (), {"present": 1})
    assert hooked.present == 1 and hooked.known == ("hook", "Hooked")
    with pytest.raises(AttributeError, match="hook: no other"):
        hooked.other  # noqa: B018
    plain = speedups.EntityMetaBase("Plain", (), {"present": 2})
    assert plain.present == 2
    with pytest.raises(AttributeError, match="type object 'Plain' has no attribute 'other'"):
        plain.other  # noqa: B018
    assert not hasattr(plain, "other") and getattr(plain, "other", "default") == "default"


def test_entity_metaclass_leaves_class_attribute_reads_to_the_base() -> None:
    """The ORM's metaclass adds no ``__getattr__``/``__getattribute__`` of its own: a class attribute
    read stays the base's (type's own lookup, in C with the compiled build), a missing one its hook."""
    from nextorm.entity import EntityMeta

    assert "__getattr__" not in EntityMeta.__dict__ and "__getattribute__" not in EntityMeta.__dict__
    assert callable(EntityMeta.__dict__["_missing_attr_"])


# --- init_new: the constructor's fast path ----------------------------------------------------

#: (kind, auto, a, b) per column of NAMES: an auto int key of -10..10, text of at most 5 characters
#: stripped, an int of 0..100, a float, text of any length
NEW_CHECKS = (
    (1, True, -10, 10),
    (3, False, 5, True),
    (1, False, 0, 100),
    (2, False, None, None),
    (3, False, -1, False),
)

NEW_KWARGS: list[dict[str, Any]] = [
    {"name": "abc", "age": 5, "score": 1.5, "note": "x"},
    {"name": "abc", "age": 5, "score": 1.5},  # note from its default
    {"id": 3, "name": "abcde", "age": 0, "score": -0.0, "note": "long text is fine"},
    {"name": "abcdef", "age": 5, "score": 1.5},  # too long: validated
    {"name": " ab", "age": 5, "score": 1.5},  # surrounding space: validated
    {"name": "ab\t", "age": 5, "score": 1.5},
    {"name": "", "age": 5, "score": 1.5},
    {"name": "a\x00b", "age": 5, "score": 1.5},
    {"name": "ñ", "age": 5, "score": 1.5},  # not ASCII: validated
    {"name": 7, "age": 101, "score": float("inf")},
    {"name": "a", "age": -1, "score": float("nan")},
    {"name": "a", "age": True, "score": 1},
    {"name": "a", "age": 2**70, "score": 1.5, "id": 11},
    {"name": "a", "age": 5, "score": 1.5, "note": " x "},  # no strip check on note
    {"name": "a", "age": 5, "score": 1.5, "other": 1},  # not a column: False, nothing done
]


def new_outcomes(speedups: ModuleType) -> list[Any]:
    """What init_new does with each of NEW_KWARGS on a fresh object of a hand-built class."""
    import itertools

    built = make_model(speedups)
    for column in built.columns:
        column.default_value = lambda: "dflt"
    database = object()
    built.session.failure = None
    built.session.caches = {database: built.cache}
    built.cache.new_ids = {}
    registered: list[Any] = []
    built.cache.register_new = lambda obj, pk: registered.append(pk)
    plan = (built.entity, database, tuple(built.columns), NAMES, NEW_CHECKS, 1, False, itertools.count(1))
    token = speedups.current_session.set(built.session)
    try:
        result = []
        for kwargs in NEW_KWARGS:
            del built.calls[:]
            obj = speedups.EntityBase.__new__(built.entity)
            done = speedups.init_new(obj, plan, kwargs)
            slots = [column.get_raw(obj, "-") for column in built.columns]
            state = (obj._status_, obj._rbits_, obj._wbits_, obj._orig_) if done else None
            result.append(
                (
                    done,
                    list(built.calls),
                    slots,
                    state,
                    built.cache.new_ids.get(obj),
                    obj in built.cache.dirty,
                )
            )
        result.append(registered)
        return result
    finally:
        speedups.current_session.reset(token)


@pytest.mark.c_extension
def test_twins_make_new_objects_alike(twins: tuple[ModuleType, ModuleType]) -> None:
    """init_new takes the same values unchanged, sends the same ones to the validation hook and
    leaves the same state in both twins."""
    compiled, pure = twins
    assert new_outcomes(compiled) == new_outcomes(pure)


def test_init_new_validates_only_values_its_checks_do_not_pass(speedups: ModuleType) -> None:
    outcomes = new_outcomes(speedups)
    plain, defaulted, keyed = outcomes[:3]
    assert plain == (True, [], ["-", "abc", 5, 1.5, "x"], (speedups.CREATED, 0, 0, None), 1, True)
    assert defaulted[1] == [("validate", "note", "dflt")] and defaulted[2][-1] == "dflt"
    assert keyed[1] == [] and keyed[2][:3] == [3, "abcde", 0]
    validated = [[call[1:] for call in outcome[1]] for outcome in outcomes[3:13]]
    assert validated == [
        [("name", "abcdef"), ("note", "dflt")],
        [("name", " ab"), ("note", "dflt")],
        [("name", "ab\t"), ("note", "dflt")],
        [("name", ""), ("note", "dflt")],
        [("name", "a\x00b"), ("note", "dflt")],
        [("name", "ñ"), ("note", "dflt")],
        [("name", 7), ("age", 101), ("score", float("inf")), ("note", "dflt")],
        [("age", -1), ("score", validated[7][1][1]), ("note", "dflt")],  # nan: validated
        [("age", True), ("score", 1), ("note", "dflt")],
        [("id", 11), ("age", 2**70), ("note", "dflt")],
    ]
    assert outcomes[4][2][1] == "ab"  # what the hook returned is stored
    assert outcomes[13][1] == [] and outcomes[13][2][-1] == " x "
    refused = outcomes[14]
    assert refused == (False, [], ["-"] * 5, None, None, False)
    assert outcomes[-1] == [3, 11]  # only known keys are registered without unique keys


def test_entity_base_init_takes_the_plan_or_the_full_path(speedups: ModuleType) -> None:
    """``EntityBase(...)`` runs ``init_new`` along ``_new_plan_`` (None: not applicable), else the
    subclass's ``_init_full_``; the base's own full path takes no arguments."""
    plain = type("Plain", (speedups.EntityBase,), {"__slots__": ()})
    assert plain()._new_plan_ is None
    with pytest.raises(TypeError, match=r"^Plain\(\) takes no arguments$"):
        plain(1)
    with pytest.raises(TypeError, match=r"^Plain\(\) takes no arguments$"):
        plain(x=1)
    seen: list[Any] = []
    full = type(
        "Full",
        (speedups.EntityBase,),
        {"__slots__": (), "_init_full_": lambda self, a, k: seen.append((a, k))},
    )
    full(1, x=2)
    full(y=3)
    assert seen == [((1,), {"x": 2}), ((), {"y": 3})]


# --- statements: the read path of one SELECT -------------------------------------------------


def _statements_db() -> Any:
    """An in-memory SQLite database with one table of three people."""
    from nextorm import Database, Required, db_session

    db = Database()

    class Person(db.Entity):  # noqa: F841 (mapped by the database)
        name = Required(str)

    db.bind("sqlite", ":memory:")
    db.generate_mapping(create_tables=True)
    with db_session:
        for name in ("Ann", "Bo", "Cy"):
            db.Person(name=name)
    return db


def test_read_rows_sends_fetches_and_counts_each_statement(speedups: ModuleType, gc_state: None) -> None:
    """``read_rows``: the rows of a SELECT, none of a statement without results; the statement
    becomes ``last_sql`` and is counted in the statistics whether it succeeds or fails; a driver
    error comes out translated, chained to the driver's; the GC is left as it was."""
    from nextorm.exceptions import OrmError

    db = _statements_db()
    provider = db.provider
    conn = provider.acquire()
    try:
        sql = 'SELECT "name" FROM "person" WHERE "id" <= ? ORDER BY "id"'
        before = db.local_stats.get(sql)
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            assert speedups.read_rows(provider, conn, sql, [2]) == [("Ann",), ("Bo",)]
            assert gc.isenabled() is enabled
        assert db.last_sql == sql
        stat = db.local_stats[sql]
        assert stat.db_count == (before.db_count if before else 0) + 2
        assert stat.min_time is not None and 0 <= stat.min_time <= stat.max_time <= stat.sum_time
        assert speedups.read_rows(provider, conn, "CREATE TABLE t (x INTEGER)", []) == []
        assert db.last_sql == "CREATE TABLE t (x INTEGER)"
        bad = "SELECT x FROM nowhere"
        with pytest.raises(OrmError, match="nowhere") as info:
            speedups.read_rows(provider, conn, bad, [])
        assert isinstance(info.value.__cause__, sqlite3.Error)
        assert db.last_sql == bad and db.local_stats[bad].db_count == 1
    finally:
        provider.release(conn)


def test_read_rows_uses_a_providers_own_send_and_logs_when_debugging(
    speedups: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider class overriding ``send`` is asked to send (the compiled path calls
    ``conn.execute`` itself only for one that does not); with SQL debugging on, the statement is
    logged to ``nextorm.sql``."""
    from nextorm import _impl
    from nextorm.providers.sqlite import SQLiteProvider

    sent: list[str] = []

    class Sending(SQLiteProvider):
        def send(self, conn: Any, sql: str, params: Any) -> Any:
            sent.append(sql)
            return super().send(conn, sql, params)

    assert SQLiteProvider.sends_directly is True and Sending.sends_directly is False
    db = _statements_db()
    provider = db.provider
    conn = provider.acquire()
    try:
        provider.__class__ = Sending
        assert speedups.read_rows(provider, conn, 'SELECT count(*) FROM "person"', []) == [(3,)]
        assert sent == ['SELECT count(*) FROM "person"']
        provider.__class__ = SQLiteProvider
        # what set_sql_debug() sets: in the twin under test, and in the one in effect, which logs
        states = {id(var): var for var in (speedups.sql_debug_state, _impl.sql_debug_state)}.values()
        tokens = [(var, var.set((True, False))) for var in states]
        try:
            with caplog.at_level(logging.INFO, logger="nextorm.sql"):
                assert speedups.read_rows(provider, conn, 'SELECT max("id") FROM "person"', []) == [(3,)]
        finally:
            for var, token in tokens:
                var.reset(token)
        assert [r.sql for r in caplog.records if r.name == "nextorm.sql"] == [
            'SELECT max("id") FROM "person"'
        ]
    finally:
        provider.__class__ = SQLiteProvider
        provider.release(conn)


def test_read_now_runs_only_when_nothing_must_happen_first() -> None:
    """``session_cache`` finds the current session's cache of a database, and ``read_now`` reads on
    it at once; both answer None wherever the full path has work to do or an error to raise: no
    session or no cache yet, no connection yet, changes to flush, a failed or ended session.

    The twin in effect is tested (sessions live in its ``current_session``): each test run checks one.
    """
    from nextorm import _impl as speedups
    from nextorm import db_session
    from nextorm.session import require_session

    db = _statements_db()
    sql, params = 'SELECT "name" FROM "person" WHERE "id" = ?', [3]
    assert speedups.session_cache(db) is None  # no session
    with db_session:
        assert speedups.session_cache(db) is None  # no cache of db yet
        cache = require_session().cache_for(db)
        assert speedups.session_cache(db) is cache
        assert speedups.read_now(cache, sql, params) is None  # no connection yet
        assert db.Person[1].name == "Ann"
        assert speedups.read_now(cache, sql, params) == [("Cy",)]
        db.Person(name="Di")
        assert speedups.read_now(cache, sql, params) is None  # the new object is flushed first
        cache.flush()
        assert speedups.read_now(cache, sql, [4]) == [("Di",)]
        session = require_session()
        session.failure = RuntimeError("a flush failed")
        try:
            assert speedups.session_cache(db) is None
            assert speedups.read_now(cache, sql, params) is None
        finally:
            session.failure = None
        assert speedups.read_now(cache, sql, params) == [("Cy",)]
        db.rollback()
    assert speedups.read_now(cache, sql, params) is None  # the session ended
    assert speedups.session_cache(db) is None


def test_query_stats_add_runs_alike(speedups: ModuleType) -> None:
    """``QueryStat`` counts runs, keeps the shortest and longest and merges; ``add_run`` counts in the
    total and the statement's own, and beyond ``limit`` statements in the total only."""
    stats: dict[str | None, Any] = {None: speedups.QueryStat(None)}
    for sql, seconds in (("a", 0.5), ("b", 0.25), ("a", 1.5), ("c", 2.0)):
        speedups.add_run(stats, sql, seconds, 2)
    assert sorted(k for k in stats if k) == ["a", "b"]  # "c" came when two were kept
    total, a = stats[None], stats["a"]
    assert (total.db_count, total.sum_time, total.min_time, total.max_time) == (4, 4.25, 0.25, 2.0)
    assert (a.db_count, a.sum_time, a.min_time, a.max_time, a.avg_time) == (2, 2.0, 0.5, 1.5, 1.0)
    copy_ = a.copy()
    copy_.merge(stats["b"])
    assert (copy_.sql, copy_.db_count, copy_.min_time, copy_.max_time) == ("a", 3, 0.25, 1.5)
    assert a.db_count == 2 and repr(a) == "<QueryStat 'a': 2 run(s), 2.000000 s>"
    assert speedups.QueryStat("x").avg_time is None
    with pytest.raises(KeyError):
        speedups.add_run({}, "a", 1.0, 10)  # no total: not statistics


def test_lazy_iterator_makes_its_items_at_the_first_next(speedups: ModuleType) -> None:
    """``LazyIterator``: ``_items_()`` is called at the first ``next()``, not before; the items are a
    copy taken then (changes to the source do not reach the iteration); an error of ``_items_()``
    propagates and the next ``next()`` asks again; an exhausted iterator stays exhausted."""
    calls: list[int] = []

    class Numbers(speedups.LazyIterator):
        __slots__ = ("source", "fail")

        def __init__(self, source: list[int], fail: int = 0) -> None:
            self.source = source
            self.fail = fail

        def _items_(self) -> list[int]:
            calls.append(len(self.source))
            if self.fail:
                self.fail -= 1
                raise OSError("not yet")
            return self.source

    source = [1, 2, 3]
    numbers = Numbers(source)
    assert iter(numbers) is numbers and calls == []
    assert next(numbers) == 1 and calls == [3]
    source.append(4)
    source[1] = 20
    assert list(numbers) == [2, 3] and calls == [3]
    with pytest.raises(StopIteration):
        next(numbers)
    flaky = Numbers([7], fail=1)
    with pytest.raises(OSError, match="not yet"):
        next(flaky)
    assert list(flaky) == [7] and calls == [3, 1, 1]
    assert list(Numbers([])) == []


def _people_db() -> Any:
    """An in-memory SQLite database of people with a unique email, and students (an entity with a
    discriminator)."""
    from nextorm import Database, Optional, Required, db_session

    db = Database()

    class Person(db.Entity):  # noqa: F841 (mapped by the database)
        name = Required(str)
        email = Optional(str, unique=True)

    class Member(db.Entity):  # noqa: F841
        name = Required(str)

    class Student(db.Member):  # type: ignore[name-defined]  # noqa: F841
        year = Optional(int)

    db.bind("sqlite", ":memory:")
    db.generate_mapping(create_tables=True)
    with db_session:
        for name in ("Ann", "Bo", "Cy"):
            db.Person(name=name, email=f"{name.lower()}@x")
            db.Student(name=name, year=1)
    return db


def test_get_now_reads_a_kept_shape_in_one_call() -> None:
    """``get_now``: None until a ``get()`` of the same keywords kept its text; then the objects it
    finds, the identity map's, their unique values learned; None again wherever the full path has
    work to do (no session, changes to flush, a value that does not bind as given) and for an
    entity with a discriminator.

    The twin in effect is tested (sessions live in its ``current_session``): each test run checks one.
    """
    from nextorm import _impl as speedups
    from nextorm import db_session
    from nextorm.exceptions import CacheIndexError
    from nextorm.session import require_session

    db = _people_db()
    Person, Student = db.Person, db.Student
    with db_session:
        assert speedups.get_now(Person, {"email": "bo@x"}) is None  # no text of this shape yet
        bo = Person.get(email="bo@x")
        found = speedups.get_now(Person, {"email": "bo@x"})
        assert found == [bo] and found[0] is bo
        assert speedups.get_now(Person, {"email": "nobody@x"}) == []
        (cy,) = speedups.get_now(Person, {"email": "cy@x"})
        assert cy.name == "Cy" and Person[cy.id] is cy
        cache = require_session().cache_for(db)
        (key,) = Person._unique_keys_
        assert cache.unique[key]["cy@x"] is cy  # learned: a new "cy@x" clashes in the session
        with pytest.raises(CacheIndexError, match="cy@x"):
            Person(name="Copy", email="cy@x")
        assert speedups.get_now(Person, {"email": 5}) is None  # not a str: the full path says why
        Person(name="Di", email="di@x")
        assert speedups.get_now(Person, {"email": "di@x"}) is None  # the new object is flushed first
        assert Person.get(email="di@x").name == "Di"
        assert speedups.get_now(Person, {"email": "di@x"})[0].name == "Di"
        assert Student.get(name="Bo").year == 1
        assert speedups.get_now(Student, {"name": "Bo"}) is None  # a discriminator: the full path
        db.rollback()
    assert speedups.get_now(Person, {"email": "bo@x"}) is None  # no session


def _family_db() -> Any:
    """An in-memory SQLite database of parents and their children (one-to-many), and tags of
    parents (many-to-many)."""
    from nextorm import Database, Required, Set, db_session

    db = Database()

    class Parent(db.Entity):  # noqa: F841
        name = Required(str)
        children = Set("Child")
        tags = Set("Tag")

    class Child(db.Entity):  # noqa: F841
        name = Required(str)
        parent = Required(Parent)

    class Tag(db.Entity):  # noqa: F841
        name = Required(str)
        parents = Set(Parent)

    db.bind("sqlite", ":memory:")
    db.generate_mapping(create_tables=True)
    with db_session:
        ann, bo = db.Parent(name="Ann"), db.Parent(name="Bo")
        for name in ("a1", "a2"):
            db.Child(name=name, parent=ann)
        db.Child(name="b1", parent=bo)
        db.Tag(name="t", parents=[ann])
    return db


def test_members_now_loads_a_one_to_many_collection_at_once() -> None:
    """``members_now``: the loaded state of a collection as it is; a one-to-many collection whose
    SELECT was made before read at once, its members the objects whose reference holds the
    owner's key; None wherever the full path has work to do (the text not made yet, changes to
    flush, a many-to-many collection, an owner whose session is over).

    The twin in effect is tested (sessions live in its ``current_session``): each test run checks one.
    """
    from nextorm import _impl as speedups
    from nextorm import db_session

    db = _family_db()
    Parent = db.Parent
    children = Parent.children
    with db_session:
        ann = Parent[1]
        assert speedups.members_now(children, ann) is None  # the SELECT of one owner not made yet
        assert {c.name for c in ann.children} == {"a1", "a2"}
        assert speedups.members_now(Parent.tags, ann) is None  # many-to-many: the full path
    with db_session:
        ann, bo = Parent[1], Parent[2]
        data = speedups.members_now(children, ann)
        assert data is not None and data.loaded
        assert sorted(c.name for c in data.items) == ["a1", "a2"]
        assert all(db.Child[c.id] is c for c in data.items)
        assert speedups.members_now(children, ann) is data  # known now: no read
        assert ann.children.is_empty() is False and len(ann.children) == 2
        db.Child(name="b2", parent=bo)
        assert speedups.members_now(children, bo) is None  # the new child is flushed first
        assert sorted(c.name for c in bo.children) == ["b1", "b2"]
        new = speedups.members_now(children, Parent(name="New"))  # a new owner: known empty
        assert new is not None and new.loaded and new.items == {}
        db.rollback()
    with db_session:
        cy = Parent[2]
    with db_session:
        assert speedups.members_now(children, cy) is None  # its session is over
    assert speedups.members_now(children, ann) is data  # loaded, and not volatile: kept


def test_set_data_starts_empty_and_not_loaded(speedups: ModuleType) -> None:
    """``SetData``: a new collection state knows no member and is not loaded; both are plain attributes."""
    data = speedups.SetData()
    assert data.items == {} and data.loaded is False
    data.items, data.loaded = {"m": None}, True
    assert (data.items, data.loaded) == ({"m": None}, True)
    assert speedups.SetData().items is not speedups.SetData().items


def test_learn_unique_batches_the_loads_it_indexes(speedups: ModuleType) -> None:
    """``learn_unique`` lists the loads of an entity with unique keys and has the cache index them
    once ``UNLEARNED_LOADS`` wait; an entity without unique keys is not listed."""
    indexed: list[int] = []

    class Cache:
        def __init__(self) -> None:
            self._unlearned: list[Any] = []

        def _learn_loaded(self) -> None:
            indexed.append(len(self._unlearned))
            self._unlearned = []

    class Keyed:
        _unique_keys_ = ("email",)

    class Plain:
        _unique_keys_ = ()

    cache = Cache()
    speedups.learn_unique(cache, iter(["a"]), Plain)
    assert cache._unlearned == []
    for number in range(speedups.UNLEARNED_LOADS - 1):
        speedups.learn_unique(cache, [number], Keyed)
    assert indexed == [] and cache._unlearned[-1] == ((speedups.UNLEARNED_LOADS - 2,), Keyed)
    speedups.learn_unique(cache, iter(["last"]), Keyed)
    assert indexed == [speedups.UNLEARNED_LOADS] and cache._unlearned == []


def test_take_members_keeps_the_members_that_refer_to_the_owner() -> None:
    """``take_members``: the owner's collection becomes loaded with the members given whose
    reference holds its key, less deleted ones; its state is made when it had none."""
    from nextorm import _impl as speedups
    from nextorm import db_session

    db = _family_db()
    with db_session:
        ann, bo = db.Parent[1], db.Parent[2]
        a1, a2, b1 = (db.Child.get(name=name) for name in ("a1", "a2", "b1"))
        assert db.Parent.children.data(ann) is None
        data = speedups.take_members(db.Parent.children, ann, ann.id, [a1, b1, a2])
        assert db.Parent.children.data(ann) is data and data.loaded
        assert list(data.items) == [a1, a2]
        a2.delete()
        again = speedups.take_members(db.Parent.children, ann, ann.id, [a1, a2])
        assert again is data and list(data.items) == [a1]
        assert list(speedups.take_members(db.Parent.children, bo, bo.id, [a1, b1]).items) == [b1]
        db.rollback()


def test_shape_of_reads_comparisons_of_columns_with_plain_values() -> None:
    """``shape_of``: each comparison of a column with a plain value adds its column and operator
    (None for a None value, the length of an IN list) and binds its values in order; and/or adds
    its operator and count, not adds "NOT"; anything else (a value of another type, an operator
    it does not shape, an expression that is not a comparison) answers False.

    The twin in effect is tested (its ``Column`` is the attributes' base; the query module gives
    it the condition classes).
    """
    from nextorm import _impl as speedups
    from nextorm.expressions import BoolOp, Compare, Not, Param

    Person = _people_db().Person
    name, email, pk = Person.name, Person.email, Person.id
    key: list[Any] = []
    params: list[Any] = []
    conditions = (
        Compare(name, "==", "Bo"),
        BoolOp("OR", (Compare(pk, "in", (1, 2, 3)), Not(Compare(email, "==", None)))),
    )
    assert speedups.shape_of(conditions, key, params) is True
    assert key == [("name", "=="), ("OR", 2), ("id", "in", 3), "NOT", ("email", "==", None)]
    assert params == ["Bo", 1, 2, 3]
    for refused in (
        Compare(name, "==", object()),  # a value that does not bind as itself
        Compare(name, "like", "B%"),  # an operator whose text depends on more than the value
        Compare(pk, "in", (1, object())),
        Not(Param(True)),  # not a comparison
    ):
        assert speedups.shape_of((refused,), [], []) is False, refused
    assert speedups.BOUND_TYPES >= {str, int, float, bool, bytes} and "==" in speedups.SHAPED_OPERATORS


def test_select_sql_now_binds_a_kept_text_of_the_same_shape() -> None:
    """``select_sql_now``: None until a query of the shape was rendered (and kept); then the kept
    text with this query's values and the constant parameters after them; None for another
    dialect, another shape (a None value, another limit, an order not known yet) or a condition
    it cannot shape. ``select_shape`` is the shape and the values bound, in order.

    The twin in effect is tested (the query module gives it the condition classes).
    """
    from nextorm import _impl as speedups
    from nextorm import db_session

    db = _people_db()
    Person = db.Person
    dialect = db.provider.dialect
    with db_session:
        query = Person.select(lambda p: p.name == "Bo")
        assert speedups.select_sql_now(query, dialect, False, 5) is None  # not rendered yet
        assert [p.email for p in query[:5]] == ["bo@x"]
        other = Person.select(lambda p: p.name == "Cy")
        sql, params = speedups.select_sql_now(other, dialect, False, 5)
        assert (sql, params) == other.limit(5).sql()
        assert params[0] == "Cy"
        assert speedups.select_sql_now(other, object(), False, 5) is None  # another dialect
        assert speedups.select_sql_now(other, dialect, False, 6) is None  # another limit
        assert speedups.select_sql_now(other, dialect, True, 5) is None  # COUNT(*): another text
        none = Person.select(lambda p: p.name == None)  # noqa: E711
        assert speedups.select_sql_now(none, dialect, False, 5) is None  # IS NULL: another shape
        ordered = other.order_by(Person.email)
        assert speedups.select_sql_now(ordered, dialect, False, 5) is None  # its order not known
        assert [p.name for p in ordered[:5]] == ["Cy"]
        assert speedups.select_sql_now(ordered, dialect, False, 5) == ordered.limit(5).sql()
        shape, params = speedups.select_shape(other, True, None, ())
        assert (shape[0], shape[1], shape[-1], params) == (True, None, ("name", "=="), ["Cy"])
        assert speedups.select_shape(other, False, 5, ())[0] != shape
        starts = Person.select(lambda p: p.name.startswith("C"))
        assert speedups.select_shape(starts, False, None, ()) is None  # LIKE: no shape


def test_fetch_now_reads_the_objects_of_a_select_at_once() -> None:
    """``fetch_now``: the identity map's objects of a SELECT of the entity's query columns, read
    at once; None wherever the full path has work to do (no session or cache yet, changes to
    flush) and for an entity with a discriminator.

    The twin in effect is tested (sessions live in its ``current_session``).
    """
    from nextorm import _impl as speedups
    from nextorm import db_session

    db = _people_db()
    Person, Student = db.Person, db.Student
    sql, params = Person.select(lambda p: p.id <= 2).order_by(Person.id).sql()
    assert speedups.fetch_now(Person, sql, params) is None  # no session
    with db_session:
        assert speedups.fetch_now(Person, sql, params) is None  # no cache of the database yet
        ann = Person[1]
        found = speedups.fetch_now(Person, sql, params)
        assert found is not None and found[0] is ann and [p.name for p in found] == ["Ann", "Bo"]
        Person(name="Di")
        assert speedups.fetch_now(Person, sql, params) is None  # the new object is flushed first
        student_sql, student_params = Student.select().sql()
        assert speedups.fetch_now(Student, student_sql, student_params) is None  # a discriminator
        assert len(Student.select()[:]) == 3
        db.rollback()


def test_iterating_an_entity_gives_a_query_iterator_without_a_query() -> None:
    """``iter(entity)`` (the metaclass's ``__iter__``, given its class by ``use_entity_iterator``):
    a ``QueryIterator`` of the entity with no query until one is read; the entity's mapping is
    checked first."""
    from nextorm import Database, Required, db_session
    from nextorm.exceptions import MappingError
    from nextorm.query import QueryIterator

    db = _people_db()
    iterator = iter(db.Person)
    assert type(iterator) is QueryIterator and iterator.entity is db.Person
    assert iterator._query is None
    with db_session:
        assert sorted(p.name for p in iterator) == ["Ann", "Bo", "Cy"]
    unmapped = Database()

    class Thing(unmapped.Entity):
        name = Required(str)

    with pytest.raises(MappingError, match="Thing"):
        iter(Thing)
