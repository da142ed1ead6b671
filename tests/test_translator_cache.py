"""The translation cache (README "Queries in Pony's syntax"): a repeated generator or lambda query
reuses its translation and reads only its values, and never answers with a translation made for
another entity, another source, other values or names not assigned.
"""

from __future__ import annotations

from typing import Any

import pytest

from nextorm import (
    AttributeTypeError,
    count,
    ExprEvalError,
    IncomparableTypesError,
    QueryNameError,
    Required,
    Set,
    UnknownAttributeError,
    db_session,
    select,
)

LIMIT = 3  # a global the queries below read; tests rebind it
AGGREGATE = max  # a function the queries below call; tests rebind it


@pytest.fixture
def shelter(db: Any) -> tuple[Any, Any]:
    """Owners and pets with the same attributes (one query's code can read either)."""

    class Owner(db.Entity):
        name = Required(str)
        age = Required(int)

        @property
        def senior(self) -> Any:
            return self.age >= 45

    class Pet(db.Entity):
        name = Required(str)
        age = Required(int)

        @property
        def senior(self) -> Any:
            return self.age >= 8

    db.generate_mapping(create_tables=True)
    with db_session:
        for name, age in [("Ann", 30), ("Bob", 45), ("Cid", 52)]:
            Owner(name=name, age=age)
        for name, age in [("Rex", 2), ("Rio", 5), ("Tom", 9)]:
            Pet(name=name, age=age)
    return Owner, Pet


def older(E: Any, age: Any, prefix: str = "") -> Any:
    """One generator code object for every call (and every entity)."""
    return select(x for x in E if x.age > age and x.name.startswith(prefix))


def older_lambda(E: Any, age: Any, prefix: str = "") -> Any:
    """One lambda code object for every call (and every entity)."""
    return E.select(lambda x: x.age > age and x.name.startswith(prefix))


def older_than_limit(source: Any) -> Any:
    """A generator reading the global LIMIT, over an entity or a query."""
    return select(x for x in source if x.age > LIMIT)


def sorted_names(query: Any) -> list[str]:
    return sorted(x.name for x in query)


@pytest.mark.parametrize("form", [older, older_lambda])
def test_repeated_query_binds_each_calls_values(shelter, form) -> None:
    """Each repeat of the same code reads that call's values."""
    Owner, _ = shelter
    with db_session:
        assert sorted_names(form(Owner, 40)) == ["Bob", "Cid"]
        assert sorted_names(form(Owner, 40, "C")) == ["Cid"]
        assert sorted_names(form(Owner, 10)) == ["Ann", "Bob", "Cid"]
        expected = Owner.select((Owner.age > 50) & Owner.name.startswith("B")).sql()
        assert form(Owner, 50, "B").sql() == expected
        assert form(Owner, 50, "B").fetch() == []


@pytest.mark.parametrize("form", [older, older_lambda])
def test_same_code_over_another_entity_translates_again(shelter, form) -> None:
    """The code of one query run over owners, then pets, then owners again: each its own rows."""
    Owner, Pet = shelter
    with db_session:
        assert sorted_names(form(Owner, 4)) == ["Ann", "Bob", "Cid"]
        pets = form(Pet, 4)
        assert pets.entity is Pet
        assert sorted_names(pets) == ["Rio", "Tom"]
        assert sorted_names(form(Owner, 40)) == ["Bob", "Cid"]
        assert sorted_names(form(Pet, 4, "T")) == ["Tom"]


def seniors(E: Any) -> Any:
    """A generator inlining each entity's own ``senior`` property."""
    return select(x for x in E if x.senior)


def seniors_lambda(E: Any) -> Any:
    return E.select(lambda x: x.senior)


@pytest.mark.parametrize("form", [seniors, seniors_lambda])
def test_same_code_inlines_each_entitys_own_property(shelter, form) -> None:
    """A property inlined for one entity is not the other's: each entity translates its own."""
    Owner, Pet = shelter
    with db_session:
        for _ in range(2):
            assert sorted_names(form(Owner)) == ["Bob", "Cid"]
            assert sorted_names(form(Pet)) == ["Tom"]


def test_same_generator_over_an_entity_then_a_query_keeps_the_querys_conditions(shelter) -> None:
    """After runs over the entity itself, the same generator over a query keeps what it selects."""
    Owner, _ = shelter
    with db_session:
        assert sorted_names(older_than_limit(Owner)) == ["Ann", "Bob", "Cid"]
        assert sorted_names(older_than_limit(Owner)) == ["Ann", "Bob", "Cid"]
        assert sorted_names(older_than_limit(Owner.select(Owner.name != "Bob"))) == ["Ann", "Cid"]
        assert sorted_names(older_than_limit(Owner.select().limit(1, offset=2))) == ["Cid"]
        started = iter(Owner)
        first = next(started)  # an iterator already fetching: its query, not a new one
        assert first.name in {"Ann", "Bob", "Cid"}
        assert sorted_names(older_than_limit(started)) == ["Ann", "Bob", "Cid"]


def test_rebound_global_is_read_by_each_repeat(shelter) -> None:
    """A global the generator reads is read again by each run."""
    global LIMIT
    Owner, _ = shelter
    try:
        with db_session:
            LIMIT = 40
            assert sorted_names(older_than_limit(Owner)) == ["Bob", "Cid"]
            LIMIT = 50
            assert sorted_names(older_than_limit(Owner)) == ["Cid"]
    finally:
        LIMIT = 3


@pytest.mark.parametrize("form", [older, older_lambda])
def test_repeat_with_a_value_of_another_type_raises_as_the_first_run(shelter, form) -> None:
    """A value of a type the attribute does not compare with raises on a repeat too."""
    Owner, _ = shelter
    with db_session:
        assert sorted_names(form(Owner, 40)) == ["Bob", "Cid"]
        with pytest.raises((IncomparableTypesError, AttributeTypeError, ExprEvalError)) as repeated:
            form(Owner, "forty")
        with pytest.raises(type(repeated.value)) as first:
            select(x for x in Owner if x.age > "forty")
        assert str(first.value).split(":")[0] == str(repeated.value).split(":")[0]
        with pytest.raises(AttributeTypeError, match=r"^Expected .str. argument but got .int. in expression x\.name\.startswith\(prefix\)"):
            form(Owner, 40, 7)
        assert sorted_names(form(Owner, 50)) == ["Cid"]  # and the next run is right again


def lambda_reading_a_name_assigned_or_not(E: Any, assign: bool) -> Any:
    if assign:
        limit = 40
    return E.select(lambda x: x.age > limit)


def test_repeated_lambda_reading_a_name_not_assigned_raises(shelter) -> None:
    """A closure name assigned on one call and not on the next: the repeat says it is not defined."""
    Owner, _ = shelter
    with db_session:
        assert sorted_names(lambda_reading_a_name_assigned_or_not(Owner, True)) == ["Bob", "Cid"]
        with pytest.raises(QueryNameError, match="`limit` referenced before assignment"):
            lambda_reading_a_name_assigned_or_not(Owner, False)
        assert sorted_names(lambda_reading_a_name_assigned_or_not(Owner, True)) == ["Bob", "Cid"]


def lambda_on_another_entity(E: Any, other: Any) -> Any:
    return E.select(lambda x: other.name == "Rex")


def test_repeated_lambda_about_another_entity_raises_each_time(shelter) -> None:
    """A lambda whose condition is about another entity's attribute is refused on every run."""
    Owner, Pet = shelter
    with db_session:
        for _ in range(2):
            with pytest.raises(UnknownAttributeError, match="A condition on Pet cannot filter Owner"):
                lambda_on_another_entity(Owner, Pet)
        assert [p.name for p in lambda_on_another_entity(Pet, Pet)] == ["Rex"]


def generator_on_another_entity(E: Any, other: Any) -> Any:
    return select(x for x in E if other.name == "Rex")


def values_generator_on_another_entity(E: Any, other: Any) -> Any:
    return select(x.name for x in E if other.name == "Rex")


def test_generator_about_another_entity_raises_each_time(shelter) -> None:
    """A generator whose condition reads an attribute of a class it does not iterate is refused on
    its first and on every repeated run, as the lambda form is (not read as the query's own column)."""
    Owner, Pet = shelter
    with db_session:
        for query in (generator_on_another_entity, values_generator_on_another_entity):
            for _ in range(2):
                with pytest.raises(UnknownAttributeError, match="A condition on Pet cannot filter Owner"):
                    query(Owner, Pet)
        assert [p.name for p in generator_on_another_entity(Pet, Pet)] == ["Rex"]
        assert list(values_generator_on_another_entity(Pet, Pet)) == ["Rex"]


def test_a_referenced_key_read_as_the_reference_column_is_the_query_own(school_of_two) -> None:
    """``s.group.id`` is read from Student's own column: the check above accepts it, first and repeated."""
    _, Student = school_of_two
    with db_session:
        for _ in range(2):
            assert [s.name for s in select(s for s in Student if s.group.id == 1)] == ["Ann"]


@pytest.fixture
def school_of_two(db: Any) -> tuple[Any, Any]:
    """Two groups with a student each."""

    class Group(db.Entity):
        name = Required(str)
        students = Set("Student")

    class Student(db.Entity):
        name = Required(str)
        group = Required(Group)

    db.generate_mapping(create_tables=True)
    with db_session:
        Student(name="Ann", group=Group(name="g1"))
        Student(name="Bob", group=Group(name="g2"))
    return Group, Student


def test_same_lambda_code_as_filter_of_a_named_query_and_on_the_entity(shelter) -> None:
    """One lambda used by ``filter`` of a generator query and by ``Entity.select``: both right."""
    Owner, _ = shelter
    condition = lambda x: x.age < 50  # noqa: E731 - one code object for both uses
    with db_session:
        for _ in range(2):
            named = select(x for x in Owner if x.name != "Ann").filter(condition)
            assert sorted_names(named) == ["Bob"]
            plain = Owner.select(condition)
            assert plain._var == "x"
            assert sorted_names(plain) == ["Ann", "Bob"]
            assert sorted_names(plain.filter(lambda x: x.name != "Bob")) == ["Ann"]


def values_older(E: Any, age: int) -> Any:
    return select((x.name, x.age * 2) for x in E if x.age > age)


def test_repeated_query_of_values_selects_each_entitys_values(shelter) -> None:
    """A repeated generator selecting values: the values of each call's entity and age."""
    Owner, Pet = shelter
    with db_session:
        assert sorted(values_older(Owner, 40)) == [("Bob", 90), ("Cid", 104)]
        assert sorted(values_older(Owner, 50)) == [("Cid", 104)]
        assert sorted(values_older(Pet, 4)) == [("Rio", 10), ("Tom", 18)]
        assert values_older(Pet, 4).count() == 2


def keys_and_names(E: Any) -> Any:
    return select((x.id, x.name) for x in E)


def test_selected_attributes_are_each_entitys(shelter) -> None:
    """The attributes one query's code selects, over two entities: each entity's own (with its key
    selected, no DISTINCT), as its expression form selects them."""
    Owner, Pet = shelter
    with db_session:
        for E in (Owner, Pet, Owner):
            query = keys_and_names(E)
            assert query.sql() == E.select().values(E.id, E.name).sql()
            assert sorted(query) == sorted((x.id, x.name) for x in E.select())


def aggregated(E: Any) -> Any:
    """The one aggregate of every row, by the function AGGREGATE names when it runs."""
    return select(AGGREGATE(x.age) for x in E)


def test_rebound_aggregate_function_is_called_by_each_repeat(shelter) -> None:
    """A function the query calls, rebound between runs: each run calls the one it names then."""
    global AGGREGATE
    Owner, Pet = shelter
    try:
        with db_session:
            assert aggregated(Owner).fetch() == [52]
            AGGREGATE = min
            assert aggregated(Owner).fetch() == [30]
            assert aggregated(Pet).fetch() == [2]
            AGGREGATE = max
            assert aggregated(Pet).fetch() == [9]
    finally:
        AGGREGATE = max


def lengths_and_counts(E: Any, age: int) -> Any:
    return select((len(x.name), count(x)) for x in E if x.age > age)


def test_values_built_from_attributes_are_each_entitys(shelter) -> None:
    """``len(x.name)`` and ``count(x)`` of one query's code over two entities: each entity's columns."""
    Owner, Pet = shelter
    with db_session:
        assert lengths_and_counts(Owner, 0).fetch() == [(3, 3)]
        pets = lengths_and_counts(Pet, 4)
        assert pets.fetch() == [(3, 2)]
        assert f'"{Pet._table_}"' in pets.sql()[0] and f'"{Owner._table_}"' not in pets.sql()[0]
        assert lengths_and_counts(Owner, 40).fetch() == [(3, 2)]


def test_iterating_an_entity_fetches_its_objects(shelter) -> None:
    """``for x in Entity`` and ``list(Entity)`` still fetch every object; the iterator has its query."""
    Owner, _ = shelter
    with db_session:
        assert sorted(o.name for o in Owner) == ["Ann", "Bob", "Cid"]
        assert len(list(Owner)) == 3
        iterator = iter(Owner)
        assert iterator.query.entity is Owner
        assert iterator.query.sql() == Owner.select().sql()
        assert sorted(o.name for o in iterator) == ["Ann", "Bob", "Cid"]


OTHER: Any = None  # an entity the query below reads as a global; the test rebinds it


def older_than(E: Any, bound: Any) -> Any:
    return select(x for x in E if x.age > bound)


def older_than_lambda(E: Any, bound: Any) -> Any:
    return E.select(lambda x: x.age > bound)


def older_than_global(E: Any) -> Any:
    return select(x for x in E if OTHER.age > 3)


@pytest.mark.parametrize("form", [older_than, older_than_lambda])
def test_repeat_passing_another_entitys_attribute_after_plain_values_raises(shelter, form) -> None:
    """The check that a repeat's conditions are about its entity is remembered for values of plain
    types only: the same code given another entity's attribute is refused, every time."""
    Owner, Pet = shelter
    with db_session:
        for _ in range(2):
            assert sorted_names(form(Owner, 40)) == ["Bob", "Cid"]
        for _ in range(2):
            with pytest.raises(UnknownAttributeError, match="A condition on Pet cannot filter Owner"):
                form(Owner, Pet.age)
        assert sorted_names(form(Owner, Owner.id)) == ["Ann", "Bob", "Cid"]
        assert sorted_names(form(Owner, 50)) == ["Cid"]


def test_repeat_reading_a_global_rebound_to_another_entity_raises(shelter) -> None:
    """A generator reading a global entity: its check is made on every run, so rebinding the global
    to another entity is refused."""
    global OTHER
    Owner, Pet = shelter
    try:
        with db_session:
            OTHER = Owner
            for _ in range(2):
                assert sorted_names(older_than_global(Owner)) == ["Ann", "Bob", "Cid"]
            OTHER = Pet
            with pytest.raises(UnknownAttributeError, match="A condition on Pet cannot filter Owner"):
                older_than_global(Owner)
    finally:
        OTHER = None
