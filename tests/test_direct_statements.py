"""Single statements run directly (``get(attr=...)``, a lazy collection load) keep what the step
machinery gives every statement: autoflush first, statistics, ``last_sql``, logging, errors."""

from __future__ import annotations

from typing import Any

import pytest

from nextorm import (
    Database,
    MultipleObjectsFoundError,
    Optional,
    PendingRollbackError,
    PrimaryKey,
    Required,
    Set,
    db_session,
    flush,
)


@pytest.fixture
def family(db: Database) -> tuple[type, type]:
    """Parent and Child (one-to-many ``children``), two parents with two children each."""

    class Parent(db.Entity):
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        email = Optional(str, unique=True)
        children = Set("Child")

    class Child(db.Entity):
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        parent = Required(Parent)

    db.generate_mapping(create_tables=True)
    with db_session:
        for p in ("a", "b"):
            parent = Parent(name=p, email=f"{p}@x")
            Child(name=f"{p}1", parent=parent)
            Child(name=f"{p}2", parent=parent)
    return Parent, Child


def test_get_by_attribute_sends_pending_changes_first(family: tuple[type, type], sql_log: Any) -> None:
    """get(email=...) flushes a pending INSERT before its SELECT and finds the new object."""
    Parent, _ = family
    with db_session:
        new = Parent(name="c", email="c@x")
        sql_log.clear()
        assert Parent.get(email="c@x") is new
        statements = sql_log.statements
    assert [s.split()[0] for s in statements if not s.startswith("BEGIN")][:2] == ["INSERT", "SELECT"]


def test_get_by_attribute_counts_and_logs_its_statement(family: tuple[type, type], sql_log: Any) -> None:
    """The direct get's SELECT is db.last_sql, is counted in db.local_stats and is logged once."""
    Parent, _ = family
    db = Parent._database_
    with db_session:
        sql_log.clear()
        before = db.local_stats[None].db_count
        assert Parent.get(email="a@x").name == "a"
        assert db.last_sql is not None and db.last_sql.startswith("SELECT")
        assert db.local_stats[None].db_count == before + 1
        assert db.local_stats[db.last_sql].db_count >= 1
        assert sql_log.statements == [db.last_sql]


def test_get_by_attribute_reports_none_and_several_matches(family: tuple[type, type]) -> None:
    """The direct get gives None for no match and MultipleObjectsFoundError naming select() for two."""
    _, Child = family
    with db_session:
        assert Child.get(name="zz") is None
        with pytest.raises(MultipleObjectsFoundError, match=r"Child\.select"):
            Child.get(parent=Child.get(name="a1").parent.id)


def test_get_by_attribute_wraps_driver_errors(family: tuple[type, type]) -> None:
    """A SELECT the database refuses on the direct path raises nextorm's DatabaseError, not the driver's."""
    from nextorm import DatabaseError

    Parent, _ = family
    db = Parent._database_
    with db_session:
        db.execute('DROP TABLE "child"')
        db.execute('DROP TABLE "parent"')
        with pytest.raises(DatabaseError):
            Parent.get(email="a@x")


def test_get_by_attribute_after_a_failed_flush_raises_pending_rollback(family: tuple[type, type]) -> None:
    """After a flush failed, the direct get refuses with PendingRollbackError as every query does."""
    Parent, _ = family
    with pytest.raises(PendingRollbackError), db_session:
        Parent(name="dup", email="a@x")
        with pytest.raises(Exception, match=r"UNIQUE|unique|duplicate"):
            flush()
        Parent.get(email="b@x")


def test_lazy_collection_load_sends_pending_changes_first(family: tuple[type, type], sql_log: Any) -> None:
    """Reading parent.children flushes a pending child first and lists it among the loaded members."""
    Parent, Child = family
    with db_session:
        parent = Parent.get(email="a@x")
        moved = Child.get(name="b1")
        moved.parent = parent
        sql_log.clear()
        assert sorted(c.name for c in parent.children) == ["a1", "a2", "b1"]
        statements = sql_log.statements
    assert [s.split()[0] for s in statements if not s.startswith("BEGIN")][:2] == ["UPDATE", "SELECT"]


def test_lazy_collection_load_leaves_out_members_the_session_moved(family: tuple[type, type]) -> None:
    """A member loaded before and pointed at another owner in the session is not in the loaded rows' owner."""
    Parent, Child = family
    with db_session:
        a, b = Parent.get(email="a@x"), Parent.get(email="b@x")
        assert sorted(c.name for c in a.children) == ["a1", "a2"]
        assert sorted(c.name for c in b.children) == ["b1", "b2"]
    with db_session:
        a, b = Parent.get(email="a@x"), Parent.get(email="b@x")
        child = Child.get(name="a1")
        child.parent = b
        flush()
        assert sorted(c.name for c in a.children) == ["a2"]
        assert sorted(c.name for c in b.children) == ["a1", "b1", "b2"]
        assert a.children.count() == 1


def test_lazy_collection_load_compares_the_one_owner_key_with_equals(
    family: tuple[type, type], sql_log: Any
) -> None:
    """One owner's lazy load selects its members with ``= ?`` and the key (no IN list, no array)."""
    Parent, _ = family
    with db_session:
        parent = Parent.get(email="a@x")
        sql_log.clear()
        assert len(parent.children) == 2
        (statement,) = [s for s in sql_log.statements if not s.startswith("BEGIN")]
    assert " IN " not in statement and "ANY" not in statement
    assert statement.endswith(("= ?)", "= %s)")), statement


def test_get_by_attribute_sends_limit_2_without_offset(family: tuple[type, type], sql_log: Any) -> None:
    """get(email=...) reads at most two rows with ``LIMIT ?``: no ``OFFSET 0`` is sent, first or repeated."""
    Parent, _ = family
    with db_session:
        sql_log.clear()
        assert Parent.get(email="a@x").name == "a"
        assert Parent.get(email="b@x").name == "b"
        statements = [s for s in sql_log.statements if not s.startswith("BEGIN")]
    assert len(statements) == 2
    for statement in statements:
        assert "OFFSET" not in statement and statement.endswith(("LIMIT ?", "LIMIT %s")), statement
