"""Entity inheritance: one table per hierarchy with a discriminator column (docs/entity-model.md)."""

from __future__ import annotations

from typing import Any

import pytest

from nextorm import (
    CacheIndexError,
    Database,
    Discriminator,
    ERDiagramError,
    ObjectNotFound,
    Optional,
    PrimaryKey,
    Required,
    Set,
    TransactionIntegrityError,
    composite_index,
    composite_key,
    db_session,
    flush,
    select,
)


@pytest.fixture
def school(db: Database) -> Any:
    """Person with subclasses Student (and its subclass Graduate) and Teacher; Group holds persons."""

    class Group(db.Entity):
        number = PrimaryKey(int)
        members = Set("Person")

    class Person(db.Entity):
        name = Required(str)
        email = Optional(str, unique=True)
        group = Optional(Group)

    class Student(Person):
        gpa = Required(float)
        events: list[str] = []

        def before_insert(self) -> None:
            Student.events.append(f"insert {self.name}")

    class Graduate(Student):
        thesis = Optional(str)

    class Teacher(Person):
        salary = Required(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        g = Group(number=1)
        Person(name="Ann", group=g)
        Student(name="Bob", gpa=3.5, group=g)
        Teacher(name="Cid", salary=100)
        Graduate(name="Dee", gpa=3.9, thesis="ORMs")

    class School:
        pass

    school = School()
    school.__dict__.update(
        db=db, Group=Group, Person=Person, Student=Student, Graduate=Graduate, Teacher=Teacher
    )
    return school


def test_default_discriminator_is_the_class_name_in_a_classtype_column(school: Any) -> None:
    """Without a Discriminator attribute the root gets ``classtype``; each class's value is its name."""
    assert school.Person._discriminator_attr_ is school.Person.classtype
    assert school.Student._discriminator_attr_ is school.Person.classtype
    assert [c._discriminator_ for c in (school.Person, school.Student, school.Graduate)] == [
        "Person",
        "Student",
        "Graduate",
    ]
    assert school.Student._root_ is school.Person
    with db_session:
        rows = school.db.select(f'SELECT name, classtype FROM "{school.Person._table_}" ORDER BY id')
    assert [tuple(r) for r in rows] == [
        ("Ann", "Person"),
        ("Bob", "Student"),
        ("Cid", "Teacher"),
        ("Dee", "Graduate"),
    ]


def test_a_root_without_subclasses_has_no_discriminator(db: Database) -> None:
    """An entity nothing derives from has no discriminator column (Pony's ``_discriminator_`` None)."""

    class Thing(db.Entity):
        name = Required(str)

    assert Thing._root_ is Thing
    assert Thing._discriminator_attr_ is None and Thing._discriminator_ is None


def test_loading_by_key_of_the_root_gives_an_object_of_its_real_class(school: Any) -> None:
    """``Person[2]`` is the Student with key 2, with its subclass attributes."""
    with db_session:
        bob = school.Person[2]
        assert type(bob) is school.Student
        assert bob.gpa == 3.5
        assert school.Student[2] is bob
        assert isinstance(school.Person[4], school.Graduate)
        assert school.Person[4].thesis == "ORMs"


def test_a_subclass_key_lookup_refuses_an_object_of_another_class(school: Any) -> None:
    """``Teacher[2]`` when 2 is a Student raises ObjectNotFound, loaded or not."""
    with db_session:
        with pytest.raises(ObjectNotFound):
            school.Teacher[2]
        school.Person[2]
        with pytest.raises(ObjectNotFound):
            school.Teacher[2]
        assert school.Teacher.get(id=2) is None


def test_select_of_the_root_returns_every_class_and_of_a_subclass_only_its_own(school: Any) -> None:
    """``Person.select()`` returns all rows; ``Student.select()`` Students and Graduates only."""
    with db_session:
        people = school.Person.select().order_by(school.Person.id)[:]
        assert [type(p).__name__ for p in people] == ["Person", "Student", "Teacher", "Graduate"]
        assert [p.name for p in school.Student.select().order_by(school.Student.id)] == ["Bob", "Dee"]
        assert school.Student.select().count() == 2
        assert school.Graduate.select().count() == 1
        assert school.Student.select(lambda s: s.gpa > 3.6)[:] == [school.Person[4]]
        assert school.Student.exists(name="Cid") is False
        assert select(s for s in school.Student if s.name == "Bob").count() == 1


def test_subclass_columns_are_nullable_in_the_table_but_required_in_python(school: Any) -> None:
    """A Required attribute of a subclass is NULL in other classes' rows and still required on create."""
    with db_session:
        assert school.db.get(f"SELECT gpa FROM \"{school.Person._table_}\" WHERE name = 'Ann'") is None
        with pytest.raises(Exception, match="gpa"):
            school.Student(name="Eve")


def test_changes_and_deletes_of_subclass_objects_are_flushed(school: Any) -> None:
    """Updates of inherited and own attributes and deletes work on subclass objects."""
    with db_session:
        bob = school.Student[2]
        bob.gpa = 2.0
        bob.name = "Robert"
        school.Teacher[3].delete()
    with db_session:
        assert (school.Person[2].name, school.Person[2].gpa) == ("Robert", 2.0)
        assert school.Person.select().count() == 3
        with pytest.raises(ObjectNotFound):
            school.Person[3]


def test_unique_attributes_are_unique_across_the_hierarchy(school: Any) -> None:
    """A unique attribute of the root clashes between objects of different classes in one session."""
    with db_session:
        school.Student(name="Eve", gpa=1.0, email="e@x")
        with pytest.raises(CacheIndexError):
            school.Teacher(name="Fay", salary=1, email="e@x")


def test_hooks_and_to_dict_of_subclasses(school: Any) -> None:
    """Hooks defined on a subclass run for it and its subclasses; to_dict has the subclass attributes."""
    assert school.Student.events == ["insert Bob", "insert Dee"]
    with db_session:
        assert school.Person[4].to_dict() == {
            "id": 4,
            "name": "Dee",
            "email": None,
            "group": None,
            "classtype": "Graduate",
            "gpa": 3.9,
            "thesis": "ORMs",
        }


def test_references_and_collections_to_the_root_load_subclass_objects(school: Any) -> None:
    """A collection of Person holds the Student as a Student; a reference seeded as Person becomes one."""
    with db_session:
        members = sorted(school.Group[1].members, key=lambda p: p.id)
        assert [type(m).__name__ for m in members] == ["Person", "Student"]
        assert members[1].gpa == 3.5


def test_an_object_known_only_by_key_takes_its_class_when_its_row_is_read(school: Any) -> None:
    """A Person seeded by a reference is the same object once loaded as a Student."""
    with db_session:
        school.Person(name="Gil", group=school.Group[1])
        flush()
    with db_session:
        group = school.Group[1]
        bob = school.Student.select(lambda s: s.name == "Bob").first()
        assert bob in group.members
        assert school.Person[2] is bob


def test_custom_discriminator_column_and_values(db: Database) -> None:
    """``Discriminator(int)`` with ``_discriminator_`` values stores and reads back those values."""

    class Shape(db.Entity):
        _discriminator_ = 1
        kind = Discriminator(int)
        name = Required(str)

    class Circle(Shape):
        _discriminator_ = "2"
        radius = Required(float)

    db.generate_mapping(create_tables=True)
    assert Circle._discriminator_ == 2
    with db_session:
        Shape(name="blob")
        Circle(name="ring", radius=1.5)
    with db_session:
        assert [s.kind for s in Shape.select().order_by(Shape.id)] == [1, 2]
        assert type(Shape[2]) is Circle
        assert [tuple(r) for r in db.select(f'SELECT name, kind FROM "{Shape._table_}" ORDER BY id')] == [
            ("blob", 1),
            ("ring", 2),
        ]


def test_a_diamond_of_subclasses_shares_one_root(db: Database) -> None:
    """A class may derive from two subclasses of one root; it has the attributes of both."""

    class Base(db.Entity):
        id = PrimaryKey(int)

    class Left(Base):
        a = Required(int)

    class Right(Base):
        b = Required(int)

    class Both(Left, Right):
        c = Required(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        Both(id=1, a=1, b=2, c=3)
    with db_session:
        obj = Base[1]
        assert type(obj) is Both and (obj.a, obj.b, obj.c) == (1, 2, 3)
        assert Left.select()[:] == [obj] == Right.select()[:]


def test_a_subclass_index_names_inherited_attributes_and_the_table_gets_it(
    db: Database, db_kind: str
) -> None:
    """``composite_index()`` in a subclass takes inherited attributes by name (the discriminator
    and the key too); the hierarchy's one table is created with the index."""

    class Base(db.Entity):
        kind = Discriminator(str)
        a = Required(int)

    class Sub(Base):
        b = Required(int)
        composite_index("kind", "id", "a", b)

    (key,) = Sub._composite_indexes_
    assert key.attrs == (Base.kind, Base.id, Base.a, Sub.b)
    db.generate_mapping(create_tables=True)
    table = db.schema.tables[Base._table_]
    index = table.indexes[tuple(table.column_dict[name] for name in ("kind", "id", "a", "b"))]
    assert (index.is_pk, index.is_unique) == (False, False)
    with db_session:
        if db_kind == "sqlite":
            found = db.select("name from sqlite_master where type = 'index' and tbl_name = 'Base'")
        else:
            found = db.select(
                "indexname from pg_indexes where tablename = 'base' and schemaname = current_schema()"
            )
        assert "idx_base__kind__id__a__b" in [name.lower() for name in found]
        Sub(a=1, b=2)
    with db_session:
        assert [(type(o), o.a) for o in Base.select()] == [(Sub, 1)]


def test_a_subclass_composite_key_is_a_unique_constraint_of_the_table(db: Database) -> None:
    """``composite_key()`` declared in a subclass is a UNIQUE constraint of the hierarchy's table,
    so two sessions cannot store one key twice (the session's own check sees one session only)."""

    class Vehicle(db.Entity):
        plate = Required(str)

    class Car(Vehicle):
        maker = Required(str)
        serial = Required(int)
        composite_key(maker, serial)

    db.generate_mapping(create_tables=True)
    with db_session:
        Car(plate="A", maker="Saab", serial=1)
    with pytest.raises(TransactionIntegrityError), db_session:
        Car(plate="B", maker="Saab", serial=1)
    with db_session:
        Car(plate="C", maker="Saab", serial=2)
        Vehicle(plate="D")
        Vehicle(plate="E")  # the other classes' rows hold NULLs, which no key compares equal
    with db_session:
        assert sorted(v.plate for v in Vehicle.select()) == ["A", "C", "D", "E"]


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        ("hide", "Name 'a' hides base attribute Base.a"),
        ("pk", "Primary key cannot be redefined in derived classes"),
        (
            "siblings",
            "Attribute Right.x conflicts with attribute Left.x because both entities inherit from Base",
        ),
        ("two roots", "Multiple inheritance graph must be diamond-like"),
    ],
)
def test_bad_hierarchies_are_refused(db: Database, declare: str, message: str) -> None:
    """Pony's declaration errors: hiding, a second primary key, sibling clashes, two roots."""

    class Base(db.Entity):
        id = PrimaryKey(int)
        a = Required(int)

    class Other(db.Entity):
        id = PrimaryKey(int)

    with pytest.raises(ERDiagramError, match=message.replace("(", r"\(")):
        if declare == "hide":

            class Hider(Base):
                a = Required(int)

        elif declare == "pk":

            class Keyed(Base):
                b = PrimaryKey(int)

        elif declare == "siblings":

            class Left(Base):
                x = Required(int)

            class Right(Base):
                x = Required(int)

        else:

            class Mixed(Base, Other):
                pass


def test_a_non_text_discriminator_needs_values(db: Database) -> None:
    """``Discriminator(int)`` without ``_discriminator_`` is a TypeError naming the entity and column."""
    with pytest.raises(
        TypeError, match="Discriminator value for entity Thing with custom discriminator column 'kind'"
    ):

        class Thing(db.Entity):
            kind = Discriminator(int)


def test_isinstance_in_a_query_tests_the_discriminator(school: Any) -> None:
    """``isinstance(p, Student)`` in a query selects Students and their subclasses; tuples, ``not`` too."""
    Person, Student, Teacher, Graduate = school.Person, school.Student, school.Teacher, school.Graduate

    def names(query: Any) -> list[str]:
        return sorted(p.name for p in query)

    with db_session:
        assert names(select(p for p in Person if isinstance(p, Student))) == ["Bob", "Dee"]
        assert names(select(p for p in Person if not isinstance(p, Student))) == ["Ann", "Cid"]
        assert names(select(p for p in Person if isinstance(p, (Graduate, Teacher)))) == ["Cid", "Dee"]
        assert names(Person.select(lambda p: isinstance(p, Person))) == ["Ann", "Bob", "Cid", "Dee"]
        assert names(select(s for s in Student if isinstance(s, Teacher))) == []
        assert names(select(p for p in Person if isinstance(p, Student) and p.name == "Bob")) == ["Bob"]


def test_a_query_of_a_base_class_may_test_subclass_attributes(school: Any) -> None:
    """``Person.gpa`` is Student's attribute: rows of other classes have no value for it."""
    with db_session:
        assert [p.name for p in select(p for p in school.Person if p.gpa > 3.6)] == ["Dee"]
        assert [p.name for p in school.Person.select(school.Person.salary == 100)] == ["Cid"]
