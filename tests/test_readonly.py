"""``db_session(readonly=True)`` (README "Read replicas"): reads work, every write raises
ReadOnlySessionError before anything changes, and on PostgreSQL the transaction is READ ONLY.

Runs on SQLite and, when ``NEXTORM_TEST_POSTGRES`` is set, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from nextorm import (
    AsyncDatabase,
    Database,
    PrimaryKey,
    ReadOnlySessionError,
    Required,
    Set,
    TransactionError,
    db_session,
    flush,
)


@pytest.fixture
def shop(db: Database) -> SimpleNamespace:
    """Customer (table ``customer``) with a Set of Order (table ``orders``): Ann with one order of 5."""

    class Customer(db.Entity):
        _table_ = "customer"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        orders = Set("Order")

    class Order(db.Entity):
        _table_ = "orders"
        id = PrimaryKey(int, auto=True)
        total = Required(int)
        customer = Required(Customer)

    db.generate_mapping(create_tables=True)
    with db_session:
        Order(total=5, customer=Customer(name="Ann"))
    return SimpleNamespace(db=db, Customer=Customer, Order=Order)


def stored(other_connection: Any) -> tuple[list[Any], list[Any]]:
    """What is committed: customers (id, name) and orders (id, total, customer)."""
    customers = [
        tuple(r) for r in other_connection.execute("SELECT id, name FROM customer ORDER BY id").fetchall()
    ]
    orders = [
        tuple(r)
        for r in other_connection.execute("SELECT id, total, customer FROM orders ORDER BY id").fetchall()
    ]
    return customers, orders


BEFORE = ([(1, "Ann")], [(1, 5, 1)])


def test_readonly_session_reads_objects_and_raw_selects(shop: SimpleNamespace) -> None:
    """Queries, ``Entity[pk]``, collections, ``db.select`` and a SELECT through ``db.execute`` all work."""
    Customer, Order = shop.Customer, shop.Order
    with db_session(readonly=True):
        ann = Customer[1]
        assert ann.name == "Ann"
        assert [o.total for o in ann.orders] == [5]
        assert Order.select(Order.total > 1).count() == 1
        assert shop.db.select("SELECT name FROM customer") == ["Ann"]
        assert shop.db.execute("SELECT count(*) FROM orders").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda s: setattr(s.Customer[1], "name", "Bo"), r"assign 'Bo' to Customer\[1\]\.name"),
        (lambda s: setattr(s.Order[1], "customer", s.Customer(name="Cy")), r"create Customer\(name='Cy'\)"),
        (lambda s: s.Customer(name="Cy"), r"create Customer\(name='Cy'\)"),
        (lambda s: s.Order[1].delete(), r"delete Order\[1\]"),
        (lambda s: s.Customer[1].orders.clear(), r"change collection Customer\[1\]\.orders"),
        (lambda s: s.Customer.get_for_update(id=1), r"lock rows"),
        (
            lambda s: s.db.execute("UPDATE customer SET name = 'Bo'"),
            r"run \"UPDATE customer SET name = 'Bo'\"",
        ),
        (lambda s: s.db.execute("DELETE FROM orders"), r"run 'DELETE FROM orders'"),
        (lambda s: s.db.insert("customer", name="Cy"), r"run 'INSERT INTO"),
    ],
    ids=[
        "assign",
        "assign-new",
        "create",
        "delete",
        "collection",
        "for-update",
        "update-sql",
        "delete-sql",
        "insert",
    ],
)
def test_every_write_in_a_readonly_session_raises_before_changing_anything(
    shop: SimpleNamespace, other_connection: Any, sql_log: Any, write: Any, message: str
) -> None:
    """A write raises ReadOnlySessionError naming it; no statement is sent, objects and database are unchanged."""
    with db_session(readonly=True):
        ann = shop.Customer[1]
        assert [o.total for o in ann.orders] == [5]
        sql_log.clear()
        with pytest.raises(ReadOnlySessionError, match=message) as info:
            write(shop)
        assert isinstance(info.value, TransactionError)
        assert "readonly" in str(info.value)
        assert not [s for s in sql_log.statements if not s.startswith(("SELECT", "BEGIN"))]
        assert ann.name == "Ann" and [o.total for o in ann.orders] == [5]
        flush()
    assert stored(other_connection) == BEFORE


def test_readonly_and_ddl_cannot_be_combined() -> None:
    """``db_session(readonly=True, ddl=True)`` raises TypeError."""
    with pytest.raises(TypeError, match="'readonly' and 'ddl'"):
        db_session(readonly=True, ddl=True)


def test_readonly_transaction_on_postgres_is_read_only(shop: SimpleNamespace, db_kind: str) -> None:
    """On PostgreSQL a readonly session runs in a READ ONLY transaction; other sessions do not."""
    if db_kind != "postgres":
        with db_session(readonly=True):
            assert shop.db.get("SELECT name FROM customer") == "Ann"
        return
    with db_session(readonly=True):
        assert shop.db.get("SHOW transaction_read_only") == "on"
    with db_session:
        assert shop.db.get("SHOW transaction_read_only") == "off"


@pytest.fixture
def async_shop(shop: SimpleNamespace, adb: AsyncDatabase) -> Iterator[SimpleNamespace]:
    """``shop``'s tables through an AsyncDatabase, with Customer mapped."""

    class Customer(adb.Entity):
        _table_ = "customer"
        id = PrimaryKey(int, auto=True)
        name = Required(str)

    adb.generate_mapping()
    yield SimpleNamespace(db=adb, Customer=Customer)


def test_async_readonly_session_reads_and_refuses_writes(
    async_shop: SimpleNamespace, other_connection: Any
) -> None:
    """``async with db_session(readonly=True)``: awaited reads work, an assignment raises ReadOnlySessionError."""
    Customer, adb = async_shop.Customer, async_shop.db

    async def main() -> None:
        try:
            async with db_session(readonly=True):
                ann = await Customer.aget(id=1)
                assert ann.name == "Ann"
                with pytest.raises(ReadOnlySessionError, match=r"assign 'Bo' to Customer\[1\]\.name"):
                    ann.name = "Bo"
                with pytest.raises(ReadOnlySessionError, match="UPDATE"):
                    await adb.aexecute("UPDATE customer SET name = 'Bo'")
        finally:
            await adb.adisconnect()

    asyncio.run(main())
    assert stored(other_connection) == BEFORE


def test_readonly_session_keeps_no_write_snapshots(db: Database) -> None:
    """Json values read in a readonly session refuse in-place changes (README "Read replicas")."""
    from nextorm import Json, Optional

    class Doc(db.Entity):
        _table_ = "doc"
        id = PrimaryKey(int, auto=True)
        body = Optional(Json)

    db.generate_mapping(create_tables=True)
    with db_session:
        Doc(body={"a": 1})
    with db_session(readonly=True) as session:
        doc = Doc[1]
        assert doc.body == {"a": 1}
        with pytest.raises(ReadOnlySessionError):
            doc.body["a"] = 2  # a change in place is refused like an assignment
        assert doc.body == {"a": 1} and not session.caches[db].dirty
        with pytest.raises(ReadOnlySessionError):
            doc.body = {"a": 2}
