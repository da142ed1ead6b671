"""Entity methods, properties and functions in queries (docs/tutorial.md "Methods and properties in
queries"): their source is inlined into the query, on SQLite and PostgreSQL; ``getattr(p, name)``;
a nested query's aggregate as a value; the errors for what cannot be inlined."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from nextorm import (
    Database,
    Optional,
    PrimaryKey,
    Required,
    Set,
    TranslationError,
    UnknownAttributeError,
    coalesce,
    concat,
    count,
    db_session,
    desc,
    exists,
    select,
    sum,
)

#: read by Person.full_name each time a query runs
SEPARATOR = " "


def make_model(db: Database) -> tuple[Any, Any]:
    class Person(db.Entity):
        id = PrimaryKey(int)
        first = Required(str)
        last = Required(str)
        age = Required(int)
        color = Optional(str)
        cars = Set("Car")

        @property
        def full_name(self) -> Any:
            return self.first + SEPARATOR + self.last

        @property
        def full_name_2(self) -> Any:
            """A docstring before the `return` is allowed."""
            return concat(self.first, SEPARATOR, self.last)

        def name_with(self, separator: str = "_") -> Any:
            return self.first + separator + self.last

        @property
        def has_car(self) -> Any:
            return not self.cars.is_empty()

        @property
        def cars_price(self) -> Any:
            return sum(c.price for c in self.cars)

        @property
        def cars_price_or_zero(self) -> Any:
            return coalesce(select(c.price for c in self.cars).sum(), 0)

        def cars_of(self, color: str) -> Any:
            return select(car for car in self.cars if car.color == color)

        def cars_of_2(self, color: str) -> Any:
            return self.cars.select(lambda car: car.color == color)

        def is_adult(self) -> Any:
            return self.age >= 18

        def adult_with_car(self) -> Any:
            return self.is_adult() and self.has_car

        @staticmethod
        def older(person: Any, years: int) -> Any:
            return person.age > years

        def complex(self) -> Any:
            result = ""
            for i in range(3):
                result += str(i)
            return result

        def calls_complex(self) -> Any:
            return self.complex()

        def unknown_attribute(self) -> Any:
            return self.nickname == "x"  # type: ignore[attr-defined]

        @property
        def no_return(self) -> Any:
            self.first == "x"  # noqa: B015 - the body the test expects to be refused

    class Car(db.Entity):
        id = PrimaryKey(int)
        brand = Required(str)
        price = Required(int)
        color = Required(str)
        owner = Optional(Person)

        def owner_likes_color(self) -> Any:
            return self.owner is not None and self.owner.color == self.color

        def liked_by(self, person: Any) -> Any:
            return person is not None and person.color == self.color

    return Person, Car


@pytest.fixture
def model(db: Database) -> Iterator[tuple[Any, Any]]:
    Person, Car = make_model(db)
    db.generate_mapping(create_tables=True)
    with db_session:
        ann = Person(id=1, first="Ann", last="Lee", age=30, color="red")
        bob = Person(id=2, first="Bob", last="Ray", age=17, color="blue")
        Person(id=3, first="Cid", last="Moe", age=40)
        Car(id=1, brand="Fiat", price=100, color="red", owner=ann)
        Car(id=2, brand="Audi", price=300, color="white", owner=ann)
        Car(id=3, brand="Saab", price=200, color="white", owner=bob)
        Car(id=4, brand="Opel", price=50, color="red")
    yield Person, Car


def adult(person: Any) -> Any:
    return person.age >= 18


def name_of(person: Any) -> Any:
    return person.full_name


def test_property_selected_and_compared(model: Any) -> None:
    """A property is its returned expression, with the module's names read when the query runs."""
    global SEPARATOR
    Person, Car = model
    with db_session:
        assert set(select(p.full_name for p in Person)) == {"Ann Lee", "Bob Ray", "Cid Moe"}
        assert [p.id for p in Person.select(lambda p: p.full_name == "Ann Lee")] == [1]
        assert [p.id for p in Person.select(lambda p: p.full_name_2 == "Bob Ray")] == [2]
        query = select(p.full_name for p in Person if p.full_name == "Cid Moe")
        assert list(query) == ["Cid Moe"]
        # one translation per code object; SEPARATOR is a parameter of each run
        for separator in (".", " "):
            SEPARATOR = separator
            try:
                assert set(select(p.full_name for p in Person if p.id == 1)) == {f"Ann{separator}Lee"}
                assert [p.id for p in Person.select(lambda p: p.full_name_2 == f"Bob{separator}Ray")] == [2]
            finally:
                SEPARATOR = " "


def test_method_arguments_and_defaults(model: Any) -> None:
    Person, Car = model
    with db_session:
        assert set(select(p.name_with() for p in Person if p.id < 3)) == {"Ann_Lee", "Bob_Ray"}
        assert set(select(p.name_with("+") for p in Person if p.id < 3)) == {"Ann+Lee", "Bob+Ray"}
        sep = "/"
        assert set(select(p.name_with(separator=sep) for p in Person if p.id == 1)) == {"Ann/Lee"}
        assert {p.id for p in select(p for p in Person if p.is_adult())} == {1, 3}
        assert {p.id for p in select(p for p in Person if Person.older(p, 35))} == {3}
        assert {p.id for p in select(p for p in Person if p.adult_with_car())} == {1}


def test_properties_over_collections(model: Any) -> None:
    """Collections and nested queries in a property or method become nested queries."""
    Person, Car = model
    with db_session:
        assert {p.id for p in select(p for p in Person if p.has_car)} == {1, 2}
        assert {p.id for p in select(p for p in Person if not p.has_car)} == {3}
        assert set(select((p.id, p.cars_price) for p in Person)) == {(1, 400), (2, 200), (3, 0)}
        assert {p.id for p in select(p for p in Person if p.cars_price > 250)} == {1}
        assert [p.id for p in Person.select().order_by(lambda p: p.cars_price)] == [3, 2, 1]
        assert [p.id for p in Person.select().order_by(lambda p: desc(p.cars_price_or_zero))] == [1, 2, 3]
        assert [p.id for p in Person.select().sort_by(lambda p: p.cars_price_or_zero)] == [3, 2, 1]
        assert {p.id for p in select(p for p in Person if exists(c for c in p.cars_of("white") if c.price > 250))} == {1}
        assert {p.id for p in select(p for p in Person if exists(c for c in p.cars_of_2("white") if c.price > 250))} == {1}
        fiat = Car[1]
        assert {p.id for p in select(p for p in Person if fiat in p.cars_of("red"))} == {1}
        assert {p.id for p in select(p for p in Person if fiat in p.cars_of_2("red"))} == {1}
        assert {p.id for p in select(p for p in Person if p.cars_of(p.color))} == {1}
        assert {p.id for p in select(p for p in Person if not p.cars_of_2(p.color))} == {2, 3}
        assert {p.id for p in select(p for p in Person if count(p.cars_of("white")) == 1)} == {1, 2}


def test_methods_through_references_and_objects(model: Any) -> None:
    Person, Car = model
    with db_session:
        assert set(select(c.id for c in Car if c.owner_likes_color())) == {1}
        assert set(select(c.owner.full_name for c in Car if c.price > 150)) == {"Ann Lee", "Bob Ray"}
        assert set(select(c.id for c in Car if c.liked_by(None))) == set()
        ann = Person[1]
        # an object of the enclosing scope as an argument: compared by key
        assert set(select(c.id for c in Car if c.liked_by(ann))) == {1, 4}


def test_functions_of_the_enclosing_scope(model: Any) -> None:
    """A function called with the query's objects is inlined too; a local one read from its closure."""
    Person, Car = model
    limit = 35

    def older_than_limit(person: Any) -> Any:
        return person.age > limit

    with db_session:
        assert {p.id for p in select(p for p in Person if adult(p))} == {1, 3}
        assert set(select(name_of(p) for p in Person if p.id == 2)) == {"Bob Ray"}
        assert {p.id for p in Person.select(lambda p: older_than_limit(p))} == {3}
        limit = 20
        assert {p.id for p in Person.select(lambda p: older_than_limit(p))} == {1, 3}


def test_a_changed_function_is_refused(model: Any) -> None:
    Person, Car = model
    with db_session:
        results = []
        for check in (adult, name_of):
            try:
                results.append({p.id for p in select(p for p in Person if check(p))})
            except TranslationError as exc:
                results.append(str(exc))
        assert results[0] == {1, 3}
        assert "The query inlined the function check() when it was first translated" in results[1]


def test_what_cannot_be_inlined(model: Any) -> None:
    Person, Car = model
    with db_session:
        with pytest.raises(TranslationError, match=r"^Person\.complex\(\.\.\.\) is too complex to decompile: "):
            select(p.complex() for p in Person)[:]
        with pytest.raises(
            TranslationError,
            match=r"^Person\.complex\(\.\.\.\) is too complex to decompile \(inside Person\.calls_complex\)",
        ):
            select(p for p in Person if p.calls_complex())[:]
        with pytest.raises(TranslationError, match=r"^Person\.no_return\(\.\.\.\) is too complex"):
            select(p for p in Person if p.no_return)[:]
        with pytest.raises(TranslationError, match=r"^Person\.to_dict\(\.\.\.\) is too complex"):
            select(p.to_dict() for p in Person)[:]
        with pytest.raises(UnknownAttributeError) as info:
            select(p for p in Person if p.unknown_attribute())[:]
        assert str(info.value) == (
            "Entity Person does not have attribute nickname: self.nickname (inside Person.unknown_attribute)"
        )
        with pytest.raises(TranslationError, match=r"name_with\(\) got an unexpected argument 'sep'"):
            select(p.name_with(sep="-") for p in Person)[:]
        with pytest.raises(UnknownAttributeError, match="has no attribute 'nickname'"):
            select(p.nickname for p in Person)[:]


def test_getattr_with_a_name_from_the_scope(model: Any) -> None:
    """``getattr(p, name)`` reads the attribute the name names each time the query runs."""
    Person, Car = model
    with db_session:
        for name, value, expected in (("first", "Ann", {1}), ("age", 17, {2}), ("first", "Cid", {3})):
            assert {p.id for p in Person.select(lambda p: getattr(p, name) == value)} == expected
        for name, kind in (("last", str), ("age", int)):
            assert isinstance(select(getattr(p, name) for p in Person).first(), kind)
        attr = "brand"
        assert set(select(getattr(c.owner, "first") for c in Car if getattr(c, attr) == "Saab")) == {"Bob"}
        name = 1
        with pytest.raises(TranslationError) as info:
            select(getattr(p, name) for p in Person)[:]
        assert str(info.value) == "In `getattr(p, name)` second argument should be a string. Got: 1"
        with pytest.raises(TranslationError) as info:
            select(getattr(p, p.first) for p in Person)[:]
        assert str(info.value) == (
            "Expression `getattr(p, p.first)` cannot be translated into SQL because p.first will be "
            "different for each row"
        )


def test_nested_aggregates_as_values(model: Any) -> None:
    """A nested query's one aggregate value is selected, ordered by, and passed to functions."""
    Person, Car = model
    with db_session:
        assert set(select((p.id, sum(c.price for c in p.cars)) for p in Person)) == {(1, 400), (2, 200), (3, 0)}
        query = select((p.id, coalesce(select(sum(c.price) for c in p.cars), -1)) for p in Person)
        assert set(query) == {(1, 400), (2, 200), (3, 0)}
        ordered = Person.select().order_by(lambda p: desc(select(count(c) for c in p.cars)))
        assert [p.id for p in ordered][0] == 1


def test_list_comprehension_over_an_entity(model: Any) -> None:
    Person, Car = model
    with db_session:
        with pytest.raises(TranslationError, match=r"^Use generator expression \(c\.price for c in Car\) "):
            select(p for p in Person if p.age in [c.price for c in Car])[:]
        ages = [30, 40]
        assert {p.id for p in select(p for p in Person if p.age in [a for a in ages])} == {1, 3}


def test_lambda_text_names_the_query_object(model: Any) -> None:
    """``Person.select("lambda p: ...")`` names its objects for conditions and orders without a lambda."""
    Person, Car = model
    x, y = 18, "C"
    with db_session:
        query = Person.select("lambda p: p.age > x")
        assert [p.id for p in query.filter("p.first.startswith(y)")] == [3]
        assert [p.id for p in query.order_by("-p.age")] == [3, 1]


def test_inlined_sql(model: Any, db_kind: str) -> None:
    """The inlined property is the SQL of its expression; a nested sum its own SELECT."""
    Person, Car = model
    with db_session:
        sql, params = select(p.id for p in Person if p.full_name == "Ann Lee").sql()
        assert "||" in sql and params.count(" ") == 1
        sql, _ = Person.select().order_by(lambda p: p.cars_price).sql()
        assert "ORDER BY (SELECT COALESCE(SUM(" in sql
