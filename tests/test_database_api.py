"""Pony's Database API (README "Raw SQL and the Database object"): entities as attributes, schema,
dialect, last_sql, on_connect, insert given an entity, the raw-SQL shorthand without SELECT."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from nextorm import (
    AsyncDatabase,
    Database,
    MultipleRowsFound,
    OrmError,
    Optional,
    Required,
    RowNotFound,
    Set,
    db_session,
    flush,
)


@pytest.fixture
def shop(db: Database) -> Database:
    """A database with Customer and Order (an order refers to its customer)."""

    class Customer(db.Entity):
        name = Required(str, unique=True)
        orders = Set("Order")

    class Order(db.Entity):
        _table_ = "orders"
        total = Required(int)
        customer = Optional(Customer, column="customer_id")

    db.generate_mapping(create_tables=True)
    return db


def test_entities_are_attributes_of_the_database(shop: Database) -> None:
    """``db.Customer`` is the entity class declared on ``db``; ``db.entities`` maps names to classes."""
    assert shop.Customer is shop.entities["Customer"]
    assert shop.Order.__name__ == "Order"
    assert set(shop.entities) == {"Customer", "Order"}
    with pytest.raises(AttributeError, match="'Database' object has no attribute 'Nope'"):
        shop.Nope  # noqa: B018


def test_schema_is_none_until_mapping(db: Database) -> None:
    """``db.schema`` is None before ``generate_mapping``, as Pony's setup code checks."""

    class Thing(db.Entity):
        name = Required(str)

    assert db.schema is None
    db.generate_mapping(create_tables=True)
    assert db.schema is not None


def test_schema_describes_tables_columns_indexes_and_foreign_keys(shop: Database, db_kind: str) -> None:
    """``db.schema.tables`` gives each table's columns (in order and by name), keys and foreign keys."""
    customer_table = "Customer" if db_kind == "sqlite" else "customer"
    tables = shop.schema.tables
    assert set(tables) == {customer_table, "orders"}
    customer = tables[shop.Customer._table_]
    assert [c.name for c in customer.column_list] == ["id", "name"]
    pk = customer.column_dict["id"]
    assert pk.is_pk and pk.is_not_null
    name = customer.column_dict["name"]
    assert name.is_unique and name.is_not_null and not name.is_pk
    assert customer.indexes[(pk,)].is_pk
    assert customer.indexes[(name,)].is_unique
    orders = tables["orders"]
    fk_column = orders.column_dict["customer_id"]
    assert fk_column.sql_type == customer.column_dict["id"].sql_type
    (fk,) = orders.foreign_keys
    assert fk.columns == (fk_column,) and fk.parent_table == shop.Customer._table_
    assert orders.indexes[(fk_column,)].is_unique is False
    assert "CREATE TABLE" in orders.get_create_command()
    script = shop.schema.generate_create_script()
    assert script.count("CREATE TABLE") == 2 and "CREATE INDEX" in script


def test_dialect_compares_equal_to_the_database_name(shop: Database, db_kind: str) -> None:
    """``db.provider.dialect`` equals 'SQLite' or 'PostgreSQL', as Pony's dialect string does."""
    expected = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[db_kind]
    assert shop.provider.dialect == expected
    assert shop.provider.dialect != "MySQL"
    assert shop.provider.dialect in {expected: 1} and shop.provider.dialect not in {"MySQL": 1}
    assert str(shop.provider.dialect) == expected
    assert shop.provider_name == db_kind


def test_last_sql_is_the_last_statement_of_this_thread(shop: Database) -> None:
    """``db.last_sql`` is the text of the last statement run (transaction control left out)."""
    with db_session:
        shop.Customer.select().fetch()
        assert shop.last_sql is not None and shop.last_sql.startswith("SELECT")
        shop.Customer(name="Ann")
    # the INSERT was the last statement: the COMMIT that followed does not count
    assert shop.last_sql.startswith("INSERT")


def test_last_sql_reset_to_none_tells_whether_a_statement_ran_since(shop: Database) -> None:
    """``db.last_sql = None`` forgets the last statement: a read answered from the session runs
    nothing and leaves it None; the next statement sets it again. Only None can be assigned."""
    with db_session:
        ann = shop.Customer(name="Ann")
        shop.Customer.select().fetch()
        shop.last_sql = None
        assert shop.last_sql is None
        assert shop.Customer[ann.id] is ann  # from the identity map: no SELECT
        assert shop.last_sql is None
        shop.Customer.select().fetch()
        assert shop.last_sql is not None and shop.last_sql.startswith("SELECT")
        refused = re.escape("db.last_sql can only be reset to None, got 'SELECT 1'")
        with pytest.raises(ValueError, match=refused):
            shop.last_sql = "SELECT 1"
    Database().last_sql = None  # an unbound database has nothing to forget


def test_last_sql_is_none_on_an_unbound_database() -> None:
    """An unbound database has run nothing."""
    assert Database().last_sql is None


def test_insert_given_an_entity_uses_its_table_and_columns(shop: Database) -> None:
    """``db.insert(Entity, **values)`` inserts into the entity's table; attribute names map to columns."""
    with db_session:
        ann = shop.insert(shop.Customer, name="Ann")
        order = shop.insert(shop.Order, total=5, customer=ann, returning="id")
        assert shop.Order[order].customer.name == "Ann"
        assert shop.insert("orders", total=7, customer_id=ann, returning="id") == order + 1
    with db_session:
        assert shop.Order[order + 1].customer is shop.Customer[ann]


def test_insert_refuses_what_is_no_table(shop: Database) -> None:
    """A value that is neither a table name nor an entity of this database raises TypeError."""
    with db_session, pytest.raises(TypeError, match="takes a table name or an entity"):
        shop.insert(42, name="x")


def test_raw_select_without_select_keyword(shop: Database) -> None:
    """``db.select/get/exists("name from Customer ...")`` put SELECT in front, as Pony does."""
    with db_session:
        shop.Customer(name="Ann")
        shop.Customer(name="Bob")
    table = shop.provider.dialect.quote(shop.Customer._table_)
    x = "Bob"
    with db_session:
        assert shop.select(f"name from {table} order by name") == ["Ann", "Bob"]
        assert shop.get(f"name from {table} where name = $x") == "Bob"
        assert shop.exists(f"* from {table} where name = $x")
        assert not shop.exists(f"* from {table} where name = 'Cy'")
        assert shop.select(f"SELECT name FROM {table} WHERE name = $x") == ["Bob"]
        assert shop.select(f"  with n as (select name from {table}) select name from n order by 1") == [
            "Ann",
            "Bob",
        ]


def test_raw_get_errors_name_the_row_count(shop: Database) -> None:
    """``db.get`` raises RowNotFound for no row and MultipleRowsFound for several."""
    with db_session:
        shop.Customer(name="Ann")
        shop.Customer(name="Bob")
    table = shop.provider.dialect.quote(shop.Customer._table_)
    with db_session:
        with pytest.raises(RowNotFound, match="no rows"):
            shop.get(f"name from {table} where name = 'Cy'")
        with pytest.raises(MultipleRowsFound, match="2 rows"):
            shop.get(f"name from {table}")


def test_double_dollar_is_a_dollar_in_quoted_text_too(shop: Database) -> None:
    """``$$`` reads as ``$`` inside quoted SQL text too (Pony's rule); ``$name`` there stays text."""
    with db_session:
        assert shop.select("'a$$b'") == ["a$b"]
        assert shop.select("SELECT '$nope'") == ["$nope"]


def test_one_raw_sql_text_binds_the_values_of_each_call(shop: Database) -> None:
    """A raw SQL text run again reads its ``$`` names and expressions afresh on every call, from the
    caller or from ``params``; a bad expression raises OrmError naming it, every time."""
    with db_session:
        for name in ("Ann", "Bob", "Cy"):
            shop.Customer(name=name)
    table = shop.provider.dialect.quote(shop.Customer._table_)
    sql = f"SELECT * FROM {table} WHERE name = $name OR name = $(other.title())"
    with db_session:
        for name, other in (("Ann", "x"), ("Bob", "cy"), ("Zed", "q")):
            found = shop.Customer.select_by_sql(sql)
            assert sorted(c.name for c in found) == sorted({"Ann": ["Ann"], "Bob": ["Bob", "Cy"], "Zed": []}[name])
            assert shop.select(f"name FROM {table} WHERE name = $name", {"name": name}) == (
                [] if name == "Zed" else [name]
            )
        for _ in range(2):
            with pytest.raises(OrmError, match=r"`missing \+ 1` raises NameError"):
                shop.select(f"name FROM {table} WHERE name = $(missing + 1)")
            with pytest.raises(OrmError, match=r"`1 \+` raises SyntaxError"):
                shop.select(f"name FROM {table} WHERE name = $(1 +)")


def test_raw_rows_fill_objects_by_column_name_whatever_the_column_order(shop: Database) -> None:
    """select_by_sql maps columns by name: the same entity from SELECTs with their columns in
    different orders, or with only some columns, gets the right values each time."""
    with db_session:
        placed = shop.Order(total=7, customer=shop.Customer(name="Ann"))
        flush()
        ann_id = placed.id
    table = shop.provider.dialect.quote(shop.Order._table_)
    for _ in range(2):
        with db_session:
            (order,) = shop.Order.select_by_sql(f"SELECT total, customer_id, id FROM {table}")
            assert (order.id, order.total, order.customer.name) == (ann_id, 7, "Ann")
        with db_session:
            (order,) = shop.Order.select_by_sql(f"SELECT id, customer_id, total FROM {table}")
            assert (order.id, order.total, order.customer.name) == (ann_id, 7, "Ann")
        with db_session:
            (order,) = shop.Order.select_by_sql(f"SELECT id FROM {table}")
            assert order.total == 7  # loaded on first read
        with db_session, pytest.raises(OrmError, match="lacks primary key column"):
            shop.Order.select_by_sql(f"SELECT total FROM {table}")


def test_on_connect_runs_for_every_new_connection(db_kind: str, db: Database) -> None:
    """``@db.on_connect`` gets ``(db, connection)`` for each new connection, before sessions use it."""
    seen: list[Any] = []

    @db.on_connect
    def remember(database: Database, connection: Any) -> None:
        seen.append((database, connection))

    @db.on_connect(provider="mysql")
    def never(database: Database, connection: Any) -> None:
        raise AssertionError("registered for another provider")

    db.disconnect()  # the connections opened before registering are gone

    class Thing(db.Entity):
        name = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        connection = db.get_connection()
    assert seen and all(database is db for database, _ in seen)
    assert any(conn is connection for _, conn in seen)


def test_on_connect_for_one_provider_sets_up_the_connection(db_path: str) -> None:
    """``@db.on_connect(provider='sqlite')`` can run pragmas the sessions then see."""
    db = Database()

    @db.on_connect(provider="sqlite")
    def pragmas(database: Database, connection: Any) -> None:
        connection.execute("PRAGMA case_sensitive_like = ON")

    db.bind("sqlite", db_path, create_db=True)

    class Thing(db.Entity):
        name = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        db.Thing(name="Ann")
    with db_session:
        assert db.select("name from Thing where name like 'a%'") == []
        assert db.select("name from Thing where name like 'A%'") == ["Ann"]
    db.disconnect()


def test_on_connect_refuses_what_is_not_a_function() -> None:
    """Registering something that cannot be called raises TypeError."""
    with pytest.raises(TypeError, match="on_connect\\(\\) takes a function"):
        Database().on_connect(42)  # type: ignore[arg-type]


def test_on_connect_on_an_async_database_may_be_a_coroutine(adb: AsyncDatabase) -> None:
    """On an AsyncDatabase the function gets the asyncio connection and may be a coroutine."""
    seen: list[Any] = []

    @adb.on_connect
    async def remember(database: AsyncDatabase, connection: Any) -> None:
        seen.append(connection)

    class Thing(adb.Entity):
        name = Required(str)

    adb.generate_mapping(create_tables=True)

    async def main() -> Any:
        async with db_session:
            connection = await adb.aget_connection()
        await adb.adisconnect()
        return connection

    connection = asyncio.run(main())
    assert any(conn is connection for conn in seen)


def test_sharedmemory_is_one_in_memory_database_for_every_thread() -> None:
    """``Database('sqlite', ':sharedmemory:')`` (Pony's name) is one in-memory database all threads see."""
    import threading

    db = Database("sqlite", ":sharedmemory:")

    class Person(db.Entity):
        name = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        Person(name="John")
    seen: list[str] = []

    def read() -> None:
        with db_session:
            seen.extend(p.name for p in Person.select())

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen == ["John"]
    db.disconnect()


def test_dollar_parameters_take_subscripts_and_calls(shop: Database) -> None:
    """``$x[0]``, ``$d['k']``, ``$date.today()`` and ``$(expr)`` read the caller's values, as Pony does."""
    from datetime import date

    x = [5, 6]
    d = {"k": "v"}
    with db_session:
        row = shop.get("$x[1], $d['k'], $date.today(), $(x[0] + 1)")
        assert tuple(row) == (6, "v", str(date.today()) if shop.provider_name == "sqlite" else date.today(), 6)
        assert tuple(shop.get("$x[0], $y.real", {"x": [7], "y": 3})) == (7, 3)


def test_schema_lists_join_tables_and_composite_keys(db: Database) -> None:
    """A many-to-many join table and a composite primary key appear in ``db.schema`` with their keys."""
    from nextorm import PrimaryKey

    class Tag(db.Entity):
        name = PrimaryKey(str)
        posts = Set("Post")

    class Post(db.Entity):
        title = Required(str)
        tags = Set(Tag)

    class Visit(db.Entity):
        day = Required(int)
        page = Required(str)
        PrimaryKey(day, page)

    db.generate_mapping(create_tables=True)
    tables = db.schema.tables
    (join_table,) = set(tables) - {Tag._table_, Post._table_, Visit._table_}
    link = tables[join_table]
    assert len(link.column_list) == 2 and len(link.foreign_keys) == 2
    assert all(column.is_pk_part and not column.is_pk for column in link.column_list)
    visit = tables[Visit._table_]
    key = tuple(visit.column_list[:2])
    assert visit.indexes[key].is_pk and [c.name for c in key] == [Visit.day.column, Visit.page.column]


def test_insert_given_a_many_to_many_set_fills_its_join_table(db: Database) -> None:
    """``db.insert(Person.friends, **columns)`` inserts a link row into the Set's join table."""

    class Person(db.Entity):
        name = Required(str)
        friends = Set("Person", reverse="friends")

    db.generate_mapping(create_tables=True)
    with db_session:
        ann, bob = Person(name="Ann"), Person(name="Bob")
    link = db.schema.tables[Person.friends.join_table].column_list
    with db_session:
        db.insert(Person.friends, **{link[0].name: ann.id, link[1].name: bob.id})
        db.insert(Person.friends, **{link[0].name: bob.id, link[1].name: ann.id})
    with db_session:
        assert [p.name for p in Person[ann.id].friends] == ["Bob"]
        with pytest.raises(TypeError, match="Person.name is not a many-to-many Set"):
            db.insert(Person.name, name="x")


@pytest.mark.sqlite_only
def test_memory_database_reader_waits_for_another_sessions_write() -> None:
    """On ``:memory:``, a session reading while another thread's session holds a write transaction
    waits for it (the provider's timeout) and reads the committed row; it does not fail at once."""
    import threading

    db = Database("sqlite", ":memory:")

    class Person(db.Entity):
        name = Required(str)

    db.generate_mapping(create_tables=True)
    writing, outcome = threading.Event(), []

    def write() -> None:
        with db_session:
            Person(name="Ann")
            flush()  # the INSERT is sent: this session holds the write lock until commit
            writing.set()
            time.sleep(0.3)

    writer = threading.Thread(target=write)
    writer.start()
    assert writing.wait(10)
    try:
        with db_session:
            outcome.extend(p.name for p in Person.select())
    finally:
        writer.join()
        db.disconnect()
    assert outcome == ["Ann"]
