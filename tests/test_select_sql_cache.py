"""Repeated queries reuse their SELECT text (README, "Queries in Pony's syntax"): a query of the
same shape binds its values to the text made before, and a query of another shape never gets it."""

from __future__ import annotations

from typing import Any

import pytest

import nextorm.query
from nextorm import Database, Optional, PrimaryKey, QueryError, Required, UnknownAttributeError, db_session, desc


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every SELECT rendered from its statement (not taken from the cache) while the test runs."""
    made: list[str] = []
    render = nextorm.query.render

    def counting(statement: Any, dialect: Any) -> tuple[str, list[Any]]:
        sql, params = render(statement, dialect)
        made.append(sql)
        return sql, params

    monkeypatch.setattr(nextorm.query, "render", counting)
    return made


@pytest.fixture
def Item(db: Database) -> Any:
    """An entity with ten rows: ``n`` 1..10, ``tag`` 'even'/'odd', ``note`` None on rows 3, 6, 9."""

    class Item(db.Entity):
        id = PrimaryKey(int)
        n = Required(int)
        tag = Required(str)
        note = Optional(str, nullable=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        for i in range(1, 11):
            Item(id=i, n=i, tag="odd" if i % 2 else "even", note=None if i % 3 == 0 else f"note {i}")
    return Item


def ids(objects: Any) -> list[int]:
    return [obj.id for obj in objects]


def test_a_repeated_query_binds_new_values_to_the_text_made_once(Item: Any, renders: list[str]) -> None:
    """The same query with other values renders its text once and returns each value's rows."""
    with db_session:
        for low in (2, 5, 8):
            assert ids(Item.select(lambda i: i.n > low).order_by(Item.id)[:2]) == [low + 1, low + 2]
        assert len(renders) == 1


def test_none_and_a_value_get_texts_of_their_own(Item: Any, renders: list[str]) -> None:
    """``note == x`` with None is IS NULL and with a value is ``= ?``: each finds its own rows."""
    with db_session:
        for note, expected in (("note 1", [1]), (None, [3, 6, 9]), ("note 2", [2]), (None, [3, 6, 9])):
            assert ids(Item.select(lambda i: i.note == note).order_by(Item.id)) == expected
        assert len(renders) == 2


def test_in_lists_of_other_lengths_get_texts_of_their_own(db: Database, Item: Any, renders: list[str]) -> None:
    """``n IN (...)`` is spelled per list length: a longer or empty list never reuses a shorter one's text
    (PostgreSQL binds the list as one array, rendered each time)."""
    with db_session:
        assert ids(Item.select(Item.n.in_([1, 2])).order_by(Item.id)) == [1, 2]
        assert ids(Item.select(Item.n.in_([4, 5, 6])).order_by(Item.id)) == [4, 5, 6]
        assert ids(Item.select(Item.n.in_([])).order_by(Item.id)) == []
        assert ids(Item.select(Item.n.in_([7, 8])).order_by(Item.id)) == [7, 8]
        assert len(renders) == (4 if db.provider_name == "postgres" else 3)


def test_operators_columns_and_structure_are_part_of_the_shape(Item: Any) -> None:
    """Another operator, column, and/or/not arrangement is another text, whatever ran before."""
    with db_session:
        for _ in range(2):
            assert ids(Item.select(lambda i: i.n > 8).order_by(Item.id)) == [9, 10]
            assert ids(Item.select(lambda i: i.n < 3).order_by(Item.id)) == [1, 2]
            assert ids(Item.select(lambda i: i.id < 3).order_by(Item.id)) == [1, 2]
            assert ids(Item.select(lambda i: i.n < 3 and i.tag == "odd").order_by(Item.id)) == [1]
            assert ids(Item.select(lambda i: i.n < 3 or i.tag == "odd").order_by(Item.id)) == [1, 2, 3, 5, 7, 9]
            assert ids(Item.select(lambda i: not (i.n < 9)).order_by(Item.id)) == [9, 10]
            assert ids(Item.select(lambda i: i.n < 3, tag="even").order_by(Item.id)) == [2]


def test_order_limit_and_offset_are_part_of_the_shape(Item: Any) -> None:
    """Each order, limit and offset reads its own rows, in any sequence of queries."""
    with db_session:
        for _ in range(2):
            assert ids(Item.select(lambda i: i.n > 2).order_by(Item.id)[:2]) == [3, 4]
            assert ids(Item.select(lambda i: i.n > 2).order_by(desc(Item.id))[:2]) == [10, 9]
            assert ids(Item.select(lambda i: i.n > 2).order_by(Item.id)[2:4]) == [5, 6]
            assert ids(Item.select(lambda i: i.n > 2).order_by(Item.id)[:3]) == [3, 4, 5]
            assert ids(Item.select(lambda i: i.n > 2).order_by(Item.id)) == list(range(3, 11))
            assert Item.select(lambda i: i.n > 2).order_by(Item.id).first().id == 3


def test_a_slice_reads_with_its_own_limit_and_leaves_the_query_as_it_was(Item: Any, renders: list[str]) -> None:
    """``query[:n]`` reads at most ``n`` objects (replacing an earlier limit, as ``limit(n)`` does)
    whatever the query: one of the text cache, a limited one, one of values, one with a prefetch
    or a lock, one over another query; the query sliced keeps its own limit and text."""
    with db_session:
        query = Item.select(lambda i: i.n > 2).order_by(Item.id)
        before = query.sql()
        assert ids(query[:2]) == [3, 4] and ids(query[:3]) == [3, 4, 5]
        assert query.sql() == before and query._limit is None
        assert ids(query.limit(5)[:2]) == [3, 4] and ids(query.limit(1)[:3]) == [3, 4, 5]
        assert ids(query[:0]) == []
        assert list(query.limit(1)[:2].__iter__()) == list(query[:2])
        assert [n for n in Item.select().order_by(Item.id).values(Item.n)[:2]] == [1, 2]
        assert ids(Item.select().order_by(Item.id).prefetch()[:2]) == [1, 2]
        assert ids(Item.select().order_by(Item.id).for_update()[:1]) == [1]
        inner = Item.select(lambda i: i.n > 5).order_by(Item.id)
        assert ids(Item.select(lambda i: i in inner).order_by(desc(Item.id))[:2]) == [10, 9]
    made = len(renders)
    with db_session:
        assert ids(Item.select(lambda i: i.n > 4).order_by(Item.id)[:2]) == [5, 6]
    assert len(renders) == made  # the text of [:2] was kept


def test_count_and_select_of_the_same_conditions_keep_apart(Item: Any, renders: list[str]) -> None:
    """``count()`` and the objects of one condition each get their text, and each repeats from it."""
    with db_session:
        for low in (4, 6):
            assert Item.select(lambda i: i.n > low).count() == 10 - low
            assert len(Item.select(lambda i: i.n > low)[:]) == 10 - low
        assert len(renders) == 2
        assert Item.select(lambda i: i.n > 7).distinct().count() == 3


def test_entities_with_the_same_columns_read_their_own_tables(db: Database) -> None:
    """Two entities, and a base and its subclass, whose queries read alike never share a text."""

    class Left(db.Entity):
        id = PrimaryKey(int)
        n = Required(int)

    class Right(db.Entity):
        id = PrimaryKey(int)
        n = Required(int)

    class Animal(db.Entity):
        id = PrimaryKey(int)
        n = Required(int)

    class Dog(Animal):
        bark = Optional(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        Left(id=1, n=1)
        Right(id=2, n=1)
        Animal(id=3, n=1)
        Dog(id=4, n=1)
    with db_session:
        for _ in range(2):
            assert ids(Left.select(lambda x: x.n == 1)) == [1]
            assert ids(Right.select(lambda x: x.n == 1)) == [2]
            assert ids(Animal.select(lambda x: x.n == 1).order_by(Animal.id)) == [3, 4]
            assert ids(Dog.select(lambda x: x.n == 1)) == [4]
            assert Dog.select(lambda x: x.n == 1).count() == 1


def test_databases_with_the_same_entities_read_their_own_rows(db: Database, another_db: Database) -> None:
    """The same declaration on two databases keeps a text per database's entity."""

    def declare(database: Database, table: str) -> Any:
        class Row(database.Entity):
            _table_ = table
            id = PrimaryKey(int)
            n = Required(int)

        database.generate_mapping(create_tables=True)
        return Row

    first, second = declare(db, "row_a"), declare(another_db, "row_b")
    with db_session:
        first(id=1, n=5)
    with db_session:
        second(id=2, n=5)
    with db_session:
        for _ in range(2):
            assert ids(first.select(lambda r: r.n == 5)) == [1]
            assert ids(second.select(lambda r: r.n == 5)) == [2]


def test_objects_and_expressions_as_values_are_bound_without_the_cache(db: Database) -> None:
    """A condition on a related object, or comparing two columns, is rendered each time and stays right."""

    class Owner(db.Entity):
        id = PrimaryKey(int)
        pets = Optional("Pet")

    class Pet(db.Entity):
        id = PrimaryKey(int)
        owner = Optional(Owner)
        n = Required(int)
        m = Required(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        ann, bob = Owner(id=1), Owner(id=2)
        Pet(id=1, owner=ann, n=1, m=2)
        Pet(id=2, owner=bob, n=3, m=2)
    with db_session:
        for owner, expected in ((Owner[1], [1]), (Owner[2], [2]), (Owner[1], [1])):
            assert ids(Pet.select(lambda p: p.owner == owner)) == expected
        assert ids(Pet.select(lambda p: p.n < p.m)) == [1]
        assert ids(Pet.select(lambda p: p.n > p.m)) == [2]


def test_the_texts_kept_per_entity_are_bounded(Item: Any) -> None:
    """Paging through more offsets than the cache keeps stays right and keeps at most its limit."""
    limit = nextorm.query.SELECT_SQL_LIMIT
    with db_session:
        for offset in range(limit + 5):
            assert ids(Item.select(lambda i: i.n > 0).order_by(Item.id)[offset : offset + 1]) == (
                [offset + 1] if offset < 10 else []
            )
    assert 0 < len(Item._select_sql_) <= limit


def test_locking_reads_get_a_text_of_their_own(Item: Any, sql_log: Any) -> None:
    """``for_update()`` of a query run before without it locks its rows (and the plain one does not)."""
    with db_session:
        assert ids(Item.select(lambda i: i.n == 1)) == [1]
        assert ids(Item.select(lambda i: i.n == 2).for_update()) == [2]
        assert ids(Item.select(lambda i: i.n == 3)) == [3]
    selects = [s for s in sql_log.statements if s.startswith("SELECT")]
    assert [s.endswith("FOR UPDATE") for s in selects] == [False, True, False] or (
        not any("FOR UPDATE" in s for s in selects)  # SQLite locks the database instead of rows
    )


def test_an_attribute_order_repeated_stays_the_entitys_own(db: Database) -> None:
    """``order_by(attr)`` repeated reads the same rows each time; an attribute of another entity is
    refused however often its own entity was ordered by it; a subclass orders by its base's attribute."""

    class Animal(db.Entity):
        id = PrimaryKey(int)
        n = Required(int)

    class Dog(Animal):
        bark = Optional(str)

    class Plant(db.Entity):
        id = PrimaryKey(int)
        n = Required(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        Animal(id=1, n=3)
        Dog(id=2, n=1)
        Dog(id=3, n=2)
        Plant(id=4, n=0)
    with db_session:
        for _ in range(3):
            assert ids(Animal.select().order_by(Animal.n)) == [2, 3, 1]
            assert ids(Dog.select().order_by(Animal.n)) == [2, 3]
            assert ids(Dog.select(lambda d: d.n > 0).order_by(Dog.n)[:1]) == [2]
            assert ids(Plant.select().order_by(Plant.n)) == [4]
            # another entity's attribute, plain, descending or from a lambda: one error class
            with pytest.raises(UnknownAttributeError, match="order_by\\(\\): Animal.n is not an attribute of entity Plant"):
                Plant.select().order_by(Animal.n)
            with pytest.raises(UnknownAttributeError, match="order_by\\(\\): Animal.n is not an attribute of entity Plant"):
                Plant.select().order_by(lambda p: Animal.n)
            with pytest.raises(UnknownAttributeError, match="order_by\\(\\): .* is not an attribute of entity Plant"):
                Plant.select().order_by(desc(Animal.n))
            with pytest.raises(UnknownAttributeError, match="order_by\\(\\): Plant.n is not an attribute of entity Animal"):
                Animal.select().order_by(Plant.n)
            with pytest.raises(QueryError, match="order_by\\(\\) takes attributes of Animal, got 3.5"):
                Animal.select().order_by(3.5)
            # one lambda giving several items after the attribute alone: every item is kept
            assert ids(Animal.select().order_by(lambda a: (desc(a.n), a.id))) == [1, 3, 2]
            assert ids(Animal.select().order_by(Animal.id)) == [1, 2, 3]
            assert ids(Animal.select().order_by(Animal.id, desc(Animal.n))) == [1, 2, 3]
            assert ids(Animal.select().order_by(Animal.n).order_by(None)[:]) in ([1, 2, 3], [2, 3, 1], [1, 3, 2])


@pytest.mark.parametrize("bad", [True, -1, 2**63, 1.0, "2"])
def test_limits_and_slices_refuse_what_is_not_a_count(Item: Any, bad: Any) -> None:
    """limit(), its offset and a slice's bounds take ints from 0 to 2**63-1, however often the query
    ran before with a good one; the error names the entity and the value."""
    with db_session:
        query = Item.select(lambda i: i.n > 0).order_by(Item.id)
        assert ids(query.limit(2)) == [1, 2] and ids(query[:2]) == [1, 2]
        with pytest.raises(QueryError, match=f"limit of a Item query must be an int from 0 to 2\\*\\*63-1, got {bad!r}"):
            query.limit(bad)
        with pytest.raises(QueryError, match=f"offset of a Item query must be an int from 0 to 2\\*\\*63-1, got {bad!r}"):
            query.limit(2, bad)
        if bad in (-1,):
            with pytest.raises(QueryError, match="'stop' of slice object cannot be negative"):
                query[:bad]
        elif bad != 2**63:
            with pytest.raises(QueryError, match="Query slices take int bounds"):
                query[:bad]
        else:
            with pytest.raises(QueryError, match="limit of a Item query must be an int"):
                query[:bad]
        assert ids(query.limit(2, 0)) == [1, 2] and ids(query.limit(0)) == [] and ids(query[:0]) == []
        with pytest.raises(QueryError, match="slices do not support a step"):
            query[:2:2]
