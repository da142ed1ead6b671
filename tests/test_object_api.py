"""Pony's object API (README "A quick tour", "Objects"): a new object's key before the flush,
``to_dict()`` with Pony's options."""

from __future__ import annotations

import io
from datetime import date

import pytest

from nextorm import (
    Database,
    Optional,
    PrimaryKey,
    Required,
    Set,
    UnknownAttributeError,
    db_session,
    flush,
    show,
)


@pytest.fixture
def school(db: Database) -> Database:
    """Students in groups taking courses; a student's biography is lazy."""

    class Student(db.Entity):
        name = Required(str)
        scholarship = Optional(int)
        dob = Optional(date)
        group = Optional("Group")
        courses = Set("Course")
        biography = Optional(str, lazy=True)

    class Group(db.Entity):
        number = PrimaryKey(int)
        students = Set(Student)

    class Course(db.Entity):
        name = Required(str, unique=True)
        students = Set(Student)

    db.generate_mapping(create_tables=True)
    with db_session:
        g1 = Group(number=1)
        Group(number=2)
        c1, c2, c3 = (Course(id=i, name=n) for i, n in ((1, "Math"), (2, "Physics"), (3, "CS")))
        Student(id=1, name="S1", group=g1, courses=[c2, c1], biography="text")
        Student(id=2, name="S2", group=g1, scholarship=100, dob=date(2000, 1, 1))
        Student(id=3, name="S3", courses=[c3])
    return db


def test_new_objects_auto_key_reads_none_until_flushed(Person: type, sql_log: object) -> None:
    """Reading a new object's generated key sends nothing and gives None; the flush assigns it."""
    with db_session:
        a = Person(name="A")
        b = Person(name="B")
        sql_log.clear()  # type: ignore[attr-defined]
        assert a.id is None and b.id is None
        assert sql_log.statements == []  # type: ignore[attr-defined]
        b.flush()
        assert a.id is None and b.id is not None
        flush()
        assert a.id is not None and a.id != b.id


def test_get_pk_and_to_dict_flush_a_new_object(Person: type) -> None:
    """``get_pk()`` and ``to_dict()`` flush a new object so that they give its generated key."""
    with db_session:
        a = Person(name="A")
        assert a.to_dict()["id"] == a.id is not None
        b = Person(name="B")
        assert b.get_pk() == b.id == a.id + 1


def test_to_dict_defaults_leave_out_lazy_attributes_and_collections(school: Database) -> None:
    """By default references are keys; lazy attributes and collections are left out."""
    with db_session:
        assert school.Student[1].to_dict() == {
            "id": 1,
            "name": "S1",
            "scholarship": None,
            "dob": None,
            "group": 1,
        }


def test_to_dict_with_collections_lazy_and_related_objects(school: Database) -> None:
    """``with_collections`` adds sorted key lists, ``with_lazy`` lazy values, ``related_objects`` objects."""
    with db_session:
        s1 = school.Student[1]
        assert s1.to_dict(with_collections=True)["courses"] == [1, 2]
        assert s1.to_dict(with_lazy=True)["biography"] == "text"
        related = s1.to_dict(with_collections=True, related_objects=True)
        assert related["group"] is school.Group[1]
        assert related["courses"] == [school.Course[1], school.Course[2]]
        assert school.Student[3].to_dict(related_objects=True)["group"] is None


@pytest.mark.parametrize(
    ("only", "exclude", "expected"),
    [
        (["id", "name", "group"], None, {"id": 1, "name": "S1", "group": 1}),
        ("id, name, group", None, {"id": 1, "name": "S1", "group": 1}),
        ("id name group", None, {"id": 1, "name": "S1", "group": 1}),
        (None, "dob, scholarship", {"id": 1, "name": "S1", "group": 1}),
        ("id name group", "dob group", {"id": 1, "name": "S1"}),
        ("name courses biography", None, {"name": "S1", "courses": [1, 2], "biography": "text"}),
    ],
)
def test_to_dict_only_and_exclude(school: Database, only: object, exclude: object, expected: dict) -> None:
    """``only``/``exclude`` take a list or a string of names; ``only`` may name lazy attributes and collections."""
    with db_session:
        assert school.Student[1].to_dict(only, exclude) == expected


def test_to_dict_options_in_pony_order(school: Database) -> None:
    """The positional order is Pony's: only, exclude, with_collections, with_lazy, related_objects."""
    with db_session:
        d = school.Student[1].to_dict(None, "dob scholarship", True, True, True)
        assert d == {
            "id": 1,
            "name": "S1",
            "group": school.Group[1],
            "courses": [school.Course[1], school.Course[2]],
            "biography": "text",
        }


def test_to_dict_unknown_name_is_an_attribute_error(school: Database) -> None:
    """An unknown name raises UnknownAttributeError, an AttributeError with Pony's message."""
    with db_session:
        with pytest.raises(AttributeError, match="Entity Student does not have attribute x"):
            school.Student[1].to_dict("id name x")
        with pytest.raises(UnknownAttributeError, match="Entity Student does not have attribute x"):
            school.Student[1].to_dict(exclude="x")


def test_entity_whose_only_column_is_its_key(db: Database) -> None:
    """An entity with nothing but its generated key (and collections) inserts one row per object."""

    class Category(db.Entity):
        posts = Set("Post")

    class Post(db.Entity):
        category = Optional(Category)

    db.generate_mapping(create_tables=True)
    with db_session:
        first, second, third = Category(), Category(), Category()
        Post(category=second)
        flush()
        assert len({first.id, second.id, third.id}) == 3
    with db_session:
        assert Category.select().count() == 3
        assert Post.select().first().category.id == second.id


def test_show_prints_query_results_objects_and_declarations(school: Database) -> None:
    """``show()`` prints rows as Pony's text table (lazy attributes and collections left out)."""
    out = io.StringIO()
    with db_session:
        school.Student.select().order_by(school.Student.id).show(stream=out)
        show(school.Student[2], stream=out)
        show(school.Group, stream=out)
    assert out.getvalue().splitlines() == [
        "id|name|scholarship|dob       |group   ",
        "--+----+-----------+----------+--------",
        "1 |S1  |None       |None      |Group[1]",
        "2 |S2  |100        |2000-01-01|Group[1]",
        "3 |S3  |None       |None      |None    ",
        "instance of Student",
        "id|name|scholarship|dob       |group   ",
        "--+----+-----------+----------+--------",
        "2 |S2  |100        |2000-01-01|Group[1]",
        "class Group(Entity):",
        "    number = PrimaryKey(int)",
        "    students = Set(Student)",
    ]
    assert "    biography = Optional(str, lazy=True)" in school.Student.describe().splitlines()


def test_show_cuts_columns_to_the_width(school: Database) -> None:
    """A table wider than ``width`` has its widest columns cut, marked with ``...``."""
    out = io.StringIO()
    with db_session:
        school.Course.select().order_by(school.Course.id).show(width=12, stream=out)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 12 for line in lines)
    assert lines[0].startswith("id|")
