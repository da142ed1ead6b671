"""Queries across tables in Pony's syntax (README "Queries in Pony's syntax", docs/tutorial.md):
paths through references, collections, several ``for`` clauses, nested generators, aggregates of
collections and queries over queries, on SQLite and PostgreSQL, blocking and awaited.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from nextorm import (
    JOIN,
    AsyncDatabase,
    Database,
    ExprEvalError,
    IncomparableTypesError,
    Optional,
    PrimaryKey,
    QueryAttributeError,
    QueryError,
    Required,
    Set,
    TranslationError,
    UnknownAttributeError,
    UnsupportedQueryError,
    count,
    db_session,
    desc,
    exists,
    group_concat,
    left_join,
    max,
    min,
    select,
    sum,
)


def declare(db: Any) -> Any:
    """A school: departments, groups, students (with courses and an optional passport)."""

    class Dept(db.Entity):
        name = Required(str)
        groups = Set("Group")

    class Group(db.Entity):
        name = Required(str)
        dept = Optional(Dept)
        students = Set("Student")

    class Student(db.Entity):
        name = Required(str)
        gpa = Required(float, default=0.0)
        login = Optional(str)
        group = Optional(Group)
        courses = Set("Course")
        passport = Optional("Passport")
        mentor = Optional("Student", reverse="mentees")
        mentees = Set("Student", reverse="mentor")

    class Course(db.Entity):
        title = Required(str)
        credits = Required(int)
        students = Set(Student)

    class Passport(db.Entity):
        number = Required(str)
        student = Required(Student)

    db.generate_mapping(create_tables=True)
    return Dept, Group, Student, Course, Passport


def fill(model: Any) -> None:
    """Two departments, three groups, five students, three courses, one passport."""
    Dept, Group, Student, Course, Passport = model
    with db_session:
        math, arts = Dept(name="Math"), Dept(name="Arts")
        g1, g2, g3 = Group(name="g1", dept=math), Group(name="g2", dept=arts), Group(name="g3")
        algebra = Course(title="Algebra", credits=5)
        poetry = Course(title="Poetry", credits=3)
        Course(title="Empty", credits=1)
        ann = Student(name="Ann", gpa=4.0, login="ann", group=g1, courses=[algebra, poetry])
        bob = Student(name="Bob", gpa=3.0, group=g1, courses=[algebra], mentor=ann)
        Student(name="Cid", gpa=2.0, login="", group=g2, courses=[poetry], mentor=ann)
        Student(name="Dee", gpa=3.5, login="dee", group=g2, mentor=bob)
        Student(name="Eve", gpa=1.0)
        Passport(number="P1", student=bob)


@pytest.fixture
def school(db: Database) -> Any:
    """The school model, filled."""
    model = declare(db)
    fill(model)
    return model


def names(objects: Any) -> list[str]:
    """The sorted names (titles of courses) of ``objects``."""
    return sorted(o.title if hasattr(o, "title") else o.name for o in objects)


# -- paths through references -------------------------------------------------------------------


def test_reference_paths_join(school) -> None:
    """``s.group.dept.name`` joins the referenced tables; the forms agree."""
    Dept, Group, Student, Course, Passport = school
    wanted = "Math"
    with db_session:
        query = select(s for s in Student if s.group.dept.name == wanted)
        assert names(query) == ["Ann", "Bob"]
        sql, params = query.sql()
        assert " JOIN " in sql and params == [wanted]
        assert names(Student.select(lambda s: s.group.name == "g2")) == ["Cid", "Dee"]
        assert names(select("s for s in Student if s.group.dept.name != 'Math'")) == ["Cid", "Dee"]
        assert names(select(s for s in Student if s.group.dept is None)) == ["Eve"]
        assert names(select(s for s in Student if s.group.dept.name.startswith("A"))) == ["Cid", "Dee"]
        assert names(select(s for s in Student if s.group.name in ("g1", "g3"))) == ["Ann", "Bob"]


def test_each_path_joins_once_and_keys_read_without_a_join(school) -> None:
    """Two attributes through one path share its join; ``s.group.id`` reads the reference column."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        g1 = Group.get(name="g1")
        both = select(s for s in Student if s.group.name == "g1" and s.group.dept.name == "Math")
        assert names(both) == ["Ann", "Bob"]
        assert both.sql()[0].count(" JOIN ") == 2
        by_key = select(s for s in Student if s.group.id == g1.id)
        assert names(by_key) == ["Ann", "Bob"]
        assert " JOIN " not in by_key.sql()[0]


def test_reference_paths_compare_with_objects_and_each_other(school) -> None:
    """A reference path compares with an object, None, or another path of the query."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        math = Dept.get(name="Math")
        assert names(select(s for s in Student if s.group.dept == math)) == ["Ann", "Bob"]
        assert names(select(s for s in Student if s.group.dept != math)) == ["Cid", "Dee"]
        assert names(select(s for s in Student if s.mentor.group == s.group)) == ["Bob"]
        assert names(select(s for s in Student if s.mentor.mentor.name == "Ann")) == ["Dee"]
        assert names(select(s for s in Student if s.passport.number == "P1")) == ["Bob"]
        assert names(select(s for s in Student if (s.gpa > 3) is True)) == ["Ann", "Dee"]
        assert names(select(s for s in Student if s.passport is None)) == ["Ann", "Cid", "Dee", "Eve"]


def test_order_by_a_reference_path(school) -> None:
    """``order_by(lambda s: s.group.name)`` orders by the joined column."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        query = select(s for s in Student if s.group is not None).order_by(lambda s: (desc(s.group.name), s.name))
        assert [s.name for s in query] == ["Cid", "Dee", "Ann", "Bob"]
        query = Student.select(lambda s: s.gpa > 1).order_by(Student.name)
        assert [s.name for s in query.filter(lambda s: s.group.name == "g1")] == ["Ann", "Bob"]


# -- collections ----------------------------------------------------------------------------------


def test_membership_in_collections(school) -> None:
    """``x in g.students``, ``'Ann' in g.students.name`` and the truth value of a collection."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        ann = Student.get(name="Ann")
        assert names(select(g for g in Group if ann in g.students)) == ["g1"]
        assert names(select(g for g in Group if "Dee" in g.students.name)) == ["g2"]
        assert names(select(g for g in Group if "Dee" not in g.students.name)) == ["g1", "g3"]
        assert names(select(g for g in Group if g.students)) == ["g1", "g2"]
        assert names(select(g for g in Group if not g.students)) == ["g3"]
        assert names(select(c for c in Course if ann in c.students)) == ["Algebra", "Poetry"]
        assert names(select(s for s in Student if "Poetry" in s.courses.title)) == ["Ann", "Cid"]
        assert names(select(d for d in Dept if "Bob" in d.groups.students.name)) == ["Math"]
        assert names(select(s for s in Student if s.name in s.group.students.name and s.gpa > 3)) == [
            "Ann",
            "Dee",
        ]


def test_aggregates_of_collections(school) -> None:
    """``count(g.students)``, ``sum/min/max/avg`` of a collection's values, ``len()``."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        assert names(select(g for g in Group if count(g.students) == 2)) == ["g1", "g2"]
        assert names(select(g for g in Group if len(g.students) < 1)) == ["g3"]
        assert names(select(s for s in Student if sum(s.courses.credits) > 4)) == ["Ann", "Bob"]
        assert names(select(s for s in Student if sum(s.courses.credits) == 0)) == ["Dee", "Eve"]
        assert names(select(g for g in Group if max(g.students.gpa) > 3.8)) == ["g1"]
        assert names(select(g for g in Group if min(g.students.gpa) >= 2)) == ["g1", "g2"]
        assert names(select(g for g in Group if avg(g.students.gpa) == 2.75)) == ["g2"]
        assert names(select(c for c in Course if count(c.students) == 0)) == ["Empty"]
        assert names(select(d for d in Dept if count(d.groups.students) == 2)) == ["Arts", "Math"]


def test_aggregates_of_collections_as_selected_values(school) -> None:
    """``select((g.name, count(g.students)) for g in Group)``: each aggregate of a collection or of a
    nested generator is a value of its row, typed as the aggregate (Python reads ints, floats)."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        counts = select((g.name, count(g.students)) for g in Group).order_by(1)[:]
        assert counts == [("g1", 2), ("g2", 2), ("g3", 0)]
        assert all(type(n) is int for _, n in counts)
        assert select((c.title, count(c.students)) for c in Course).order_by(1)[:] == [
            ("Algebra", 2), ("Empty", 0), ("Poetry", 2)
        ]
        credits = select((s.name, sum(s.courses.credits)) for s in Student).order_by(1)[:]
        assert credits == [("Ann", 8), ("Bob", 5), ("Cid", 3), ("Dee", 0), ("Eve", 0)]
        assert all(type(n) is int for _, n in credits)
        best = select((g.name, max(g.students.gpa), min(g.students.gpa)) for g in Group).order_by(1)[:]
        assert best == [("g1", 4.0, 3.0), ("g2", 3.5, 2.0), ("g3", None, None)]
        assert select(count(s for s in g.students if s.gpa >= 3) for g in Group).order_by(1)[:] == [0, 1, 2]
        assert select((g.name, count(g.students)) for g in Group if count(g.students) > 1).order_by(
            desc(1)
        )[:] == [("g2", 2), ("g1", 2)]


def test_lambdas_over_a_query_of_values_take_its_items(school) -> None:
    """On a query of values, ``filter``/``order_by``/``sort_by`` take a lambda with one parameter per
    selected item (``lambda name, n: n > 1``): each parameter reads the item it names."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        pairs = select((s.name, s.gpa) for s in Student)
        assert pairs.filter(lambda name, gpa: gpa >= 3).order_by(lambda name, gpa: desc(gpa))[:] == [
            ("Ann", 4.0), ("Dee", 3.5), ("Bob", 3.0)
        ]
        assert pairs.sort_by(lambda name, gpa: gpa)[:1] == [("Eve", 1.0)]
        assert select(s.name for s in Student).order_by(lambda name: desc(name))[:2] == ["Eve", "Dee"]
        counts = select((g.name, count(g.students)) for g in Group)
        assert counts.filter(lambda name, n: n > 0).order_by(lambda name, n: (desc(n), desc(name)))[:] == [
            ("g2", 2), ("g1", 2)
        ]
        best = select((s.group.name, max(s.gpa)) for s in Student if s.group)
        assert best.order_by(lambda group, gpa: gpa)[:] == [("g2", 3.5), ("g1", 4.0)]
        with pytest.raises(TranslationError, match="takes 3 parameters and the query selects 2 items"):
            pairs.filter(lambda a, b, c: a == b)


def test_values_selected_through_reference_paths(school) -> None:
    """Several values read through different reference paths are selected side by side."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        rows = select((s.name, s.group.name, s.group.dept.name) for s in Student if s.group.dept).order_by(1)[:]
        assert rows == [("Ann", "g1", "Math"), ("Bob", "g1", "Math"), ("Cid", "g2", "Arts"), ("Dee", "g2", "Arts")]
        assert select((p.number, p.student.group) for p in Passport)[:] == [("P1", Group.get(name="g1"))]


def avg(values: Any) -> Any:
    """Pony's avg(): a query function here, an average in Python."""
    values = list(values)
    return sum(values) / len(values)


# -- nested generators -------------------------------------------------------------------------------


def test_exists_and_counts_of_nested_generators(school) -> None:
    """``exists(...)``, ``not exists(...)`` and ``count(...)`` of a nested generator are subqueries."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        assert names(select(g for g in Group if exists(s for s in g.students if s.gpa > 3.8))) == ["g1"]
        assert names(select(g for g in Group if not exists(s for s in g.students if s.gpa > 3.8))) == [
            "g2",
            "g3",
        ]
        assert names(select(g for g in Group if exists(s.login for s in g.students))) == ["g1", "g2"]
        assert names(select(g for g in Group if exists(s.login for s in g.students if s.gpa < 3))) == []
        assert names(select(g for g in Group if count(s for s in g.students if s.gpa >= 3) == 2)) == ["g1"]
        assert names(
            select(s for s in Student if exists(o for o in Student if o.gpa == s.gpa and o != s))
        ) == []
        assert names(select(s for s in Student if exists(o for o in Student if o.mentor == s))) == [
            "Ann",
            "Bob",
        ]
        assert names(select(s for s in Student if sum(o.gpa for o in Student if o.mentor == s) > 4)) == ["Ann"]


def test_in_and_not_in_nested_generators(school) -> None:
    """``x in (s.f for s in ...)`` and ``not in`` test membership in a subquery."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        top = select(s for s in Student if s.name in (o.name for o in Student if o.gpa > 3.2))
        assert names(top) == ["Ann", "Dee"]
        assert names(select(s for s in Student if s.group not in (g for g in Group if g.dept is None))) == [
            "Ann",
            "Bob",
            "Cid",
            "Dee",
            "Eve",
        ]
        assert names(select(g for g in Group if g in (s.group for s in Student if s.gpa < 2.5))) == ["g2"]
        assert names(select(c for c in Course if c in (x for s in Student if s.gpa > 3.8 for x in s.courses))) == [
            "Algebra",
            "Poetry",
        ]


def test_in_a_query_from_the_enclosing_scope(school) -> None:
    """``s.group in q`` and ``s in select(...)`` nest the query's SELECT of keys."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        in_math = select(g for g in Group if g.dept.name == "Math")
        assert names(select(s for s in Student if s.group in in_math)) == ["Ann", "Bob"]
        assert names(select(s for s in Student if s.group not in in_math)) == ["Cid", "Dee", "Eve"]
        mentors = select(s for s in Student if s.gpa >= 3.5)
        assert names(select(s for s in Student if s.mentor in mentors and s.group.name == "g2")) == ["Cid"]
        assert names(select(s for s in Student if s in mentors)) == ["Ann", "Dee"]
        assert names(select(s for s in Student if s in select(o for o in Student if o.login is None))) == [
            "Bob",
            "Eve",
        ]


def test_collection_methods_in_queries(school) -> None:
    """``g.students.is_empty()``, ``.exists(lambda)``, ``.count()`` and ``.select(lambda)`` in a query."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        bob = Student.get(name="Bob")
        assert names(select(g for g in Group if g.students.is_empty())) == ["g3"]
        assert names(select(g for g in Group if not g.students.is_empty())) == ["g1", "g2"]
        assert names(select(g for g in Group if g.students.exists(lambda s: s.gpa < 2.5))) == ["g2"]
        assert names(select(g for g in Group if g.students.count() == 2)) == ["g1", "g2"]
        assert names(select(g for g in Group if bob in g.students.select(lambda s: s.gpa > 2))) == ["g1"]
        assert names(select(g for g in Group if bob in g.students.filter(lambda s: s.gpa > 3.5))) == []
        assert names(select(g for g in Group if select(s.gpa for s in g.students).max() > 3.8)) == ["g1"]
        assert names(select(g for g in Group if select(s.gpa for s in g.students).sum() == 5.5)) == ["g2"]
        assert names(select(g for g in Group if select(s for s in g.students if s.gpa > 3).count() == 1)) == [
            "g1",
            "g2",
        ]


# -- several for clauses ---------------------------------------------------------------------------


def test_several_for_clauses_join(school) -> None:
    """Several ``for`` clauses: the selected objects, each once, with conditions between them."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        assert names(select(s for g in Group for s in g.students if g.dept.name == "Math")) == ["Ann", "Bob"]
        assert names(select(g for g in Group for s in g.students if s.gpa > 3.2)) == ["g1", "g2"]
        assert names(select(s for s in Student for c in Course if c in s.courses and c.credits == 3)) == [
            "Ann",
            "Cid",
        ]
        assert names(select(s for s in Student for c in s.courses if c.title == "Algebra")) == ["Ann", "Bob"]
        in_math = select(s for d in Dept if d.name == "Math" for s in d.groups.students)
        assert names(in_math) == ["Ann", "Bob"]
        assert names(select(s for s in Student for g in Group if s.group == g and g.name == "g2")) == [
            "Cid",
            "Dee",
        ]
        assert names(select(g for g in Group for s in g.students if JOIN(s.login is not None))) == ["g1", "g2"]
        assert names(left_join(g for g in Group for s in g.students)) == ["g1", "g2", "g3"]
        assert count(s for g in Group for s in g.students if g.name == "g1") == 2


def test_several_for_clauses_selecting_values(school) -> None:
    """Values from several ``for`` clauses: the others are tables of the query's FROM (DISTINCT
    unless every object is selected); aggregates group by the other items."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        pairs = select((s.name, c.title) for s in Student for c in s.courses if c.credits > 3)
        assert sorted(pairs) == [("Ann", "Algebra"), ("Bob", "Algebra")]
        group_names = select(g.name for g in Group for s in g.students if s.gpa >= 3)
        # Ann and Bob are both in g1: it comes once
        assert sorted(group_names) == ["g1", "g2"] and "DISTINCT" in group_names.sql()[0]
        assert group_names.count() == 2
        objects = select((c, s) for s in Student for c in Course if c.credits == 5 and s.gpa > 3.5)
        assert [(c.title, s.name) for c, s in objects] == [("Algebra", "Ann")]
        assert "DISTINCT" not in objects.sql()[0]
        assert sorted(select((s.name, count(c)) for s in Student for c in s.courses)) == [
            ("Ann", 2),
            ("Bob", 1),
            ("Cid", 1),
        ]
        in_math = select(
            (min(s.gpa), max(s.gpa)) for s in Student for g in Group if s.group == g and g.dept.name == "Math"
        )
        assert in_math[:] == [(3.0, 4.0)]
        text = select("(s.name, c.title) for s in Student for c in s.courses if c.title == 'Poetry'")
        assert sorted(text) == [("Ann", "Poetry"), ("Cid", "Poetry")]
        lowered = select((g, s.name.lower()) for g in Group for s in g.students)
        assert sorted(select(n for g, n in lowered if g.name == "g1")) == ["ann", "bob"]
        assert sorted(select((g.dept.name, n) for g, n in lowered if n.startswith("d"))) == [("Arts", "dee")]


def test_left_join_selecting_values(school) -> None:
    """``left_join()`` selecting values: the other ``for`` clauses' collections are LEFT JOINed, so
    an object whose collection is empty comes with None for them (a count of 0); a condition on
    them filters the joined rows (it is in WHERE, as Pony has it)."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        members = left_join((g.name, s.name) for g in Group for s in g.students)
        assert sorted(members, key=repr) == [("g1", "Ann"), ("g1", "Bob"), ("g2", "Cid"), ("g2", "Dee"), ("g3", None)]
        assert "LEFT JOIN" in members.sql()[0] and members.count() == 5
        assert sorted(select((g.name, s.name) for g in Group for s in g.students)) == [
            ("g1", "Ann"), ("g1", "Bob"), ("g2", "Cid"), ("g2", "Dee")
        ]
        sizes = left_join((g, count(s)) for g in Group for s in g.students)
        assert sorted((g.name, n) for g, n in sizes) == [("g1", 2), ("g2", 2), ("g3", 0)]
        good = left_join((g.name, count(s)) for g in Group for s in g.students if s.gpa > 3)
        assert sorted(good) == [("g1", 1), ("g2", 1)]
        objects = left_join((g.name, s) for g in Group for s in g.students if g.dept is None)
        assert objects[:] == [("g3", None)]
        courses = left_join((c.title, s.name, s.group.name) for c in Course for s in c.students)
        assert sorted(courses, key=repr) == [
            ("Algebra", "Ann", "g1"), ("Algebra", "Bob", "g1"), ("Empty", None, None),
            ("Poetry", "Ann", "g1"), ("Poetry", "Cid", "g2"),
        ]
        chained = left_join((d.name, g.name, s.name) for d in Dept for g in d.groups for s in g.students)
        assert sorted(chained, key=repr) == [
            ("Arts", "g2", "Cid"), ("Arts", "g2", "Dee"), ("Math", "g1", "Ann"), ("Math", "g1", "Bob")
        ]
        assert sorted(select(n for g, n in sizes if n < 2)) == [0]
        # `s is None`: the objects whose collection is empty
        assert left_join((g.name, s) for g in Group for s in g.students if s is None)[:] == [("g3", None)]
        assert sorted(left_join((g.name, s.name) for g in Group for s in g.students if s is not None))[0] == ("g1", "Ann")
        with pytest.raises(TranslationError, match="Collection expected inside left join query. Got: for s in Student"):
            left_join((g.name, s.name) for g in Group for s in Student)
        with pytest.raises(TranslationError, match="through several collections is not supported yet"):
            left_join((d.name, s.name) for d in Dept for s in d.groups.students)


def test_left_join_keeps_a_required_path_optional(db: Database) -> None:
    """A required reference read from a left-joined object is LEFT JOINed too (the object may be missing)."""

    class Shelf(db.Entity):
        name = Required(str)
        books = Set("Book")

    class Publisher(db.Entity):
        name = Required(str)
        books = Set("Book")

    class Book(db.Entity):
        title = Required(str)
        shelf = Required(Shelf)
        publisher = Required(Publisher)

    db.generate_mapping(create_tables=True)
    with db_session:
        top, empty = Shelf(name="top"), Shelf(name="empty")
        Book(title="B", shelf=top, publisher=Publisher(name="P"))
    with db_session:
        rows = left_join((sh.name, b.title, b.publisher.name) for sh in Shelf for b in sh.books)
        assert sorted(rows, key=repr) == [("empty", None, None), ("top", "B", "P")]
        assert sorted(select((sh.name, b.publisher.name) for sh in Shelf for b in sh.books)) == [("top", "P")]


def test_nested_query_values_are_selected(school) -> None:
    """``count(g.students)`` and other aggregates of collections or nested generators as selected items."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        assert sorted(select((g.name, count(g.students)) for g in Group)) == [("g1", 2), ("g2", 2), ("g3", 0)]
        crowded = select((g, count(g.students)) for g in Group if count(g.students) > 1)
        assert sorted((g.name, n) for g, n in crowded) == [("g1", 2), ("g2", 2)]
        best = select((g.name, max(s.gpa for s in g.students)) for g in Group)
        assert sorted(best) == [("g1", 4.0), ("g2", 3.5), ("g3", None)]
        credits = select((s.name, sum(c.credits for c in s.courses)) for s in Student)
        assert sorted(credits) == [("Ann", 8), ("Bob", 5), ("Cid", 3), ("Dee", 0), ("Eve", 0)]
        # distinct= of a nested query's aggregate: COUNT counts distinct values unless told otherwise
        by_groups = "select(s.group for s in c.students)"
        assert select(f"c.title for c in Course if {by_groups}.count() == 1")[:] == ["Algebra"]
        assert sorted(select(f"c.title for c in Course if {by_groups}.count(distinct=False) == 2")) == [
            "Algebra",
            "Poetry",
        ]
        credits_of = "select(c.credits for s in g.students for c in s.courses)"
        assert select(f"g.name for g in Group if {credits_of}.sum(distinct=True) == 8")[:] == ["g1"]
        assert select(f"g.name for g in Group if {credits_of}.sum() == 13")[:] == ["g1"]
        with pytest.raises(TranslationError, match=r"Function sum\(\) expects query or items of numeric type, got 'str'"):
            select(g for g in Group if sum(s.name for s in g.students) > 1)


def test_entities_of_another_database_are_refused(school, another_db) -> None:
    """A ``for`` over an entity of another database names the rule."""
    Dept, Group, Student, Course, Passport = school

    class Room(another_db.Entity):
        name = Required(str)

    another_db.generate_mapping(create_tables=True)
    with db_session, pytest.raises(TranslationError, match="must belong to the same database"):
        select(g for g in Group for r in Room if r.name == "x")


# -- queries over queries ---------------------------------------------------------------------------


def test_query_over_a_query_with_paths(school) -> None:
    """``select(x for x in q if ...)`` keeps ``q``'s joins and adds its own."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        in_math = select(s for s in Student if s.group.dept.name == "Math")
        assert names(select(x for x in in_math if x.gpa > 3.5)) == ["Ann"]
        assert names(select(x for x in in_math if x.passport.number == "P1")) == ["Bob"]
        assert names(in_math.filter(lambda s: "Poetry" in s.courses.title)) == ["Ann"]


def test_query_over_a_query_of_values(school) -> None:
    """``select(x for x in q)`` where ``q`` selects one value: ``x`` is that value, one statement."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        logins = select(s.login for s in Student if s.gpa >= 2)
        over = select(x for x in logins if x.startswith("d") or x == "ann")
        assert sorted(over) == ["ann", "dee"]
        assert over.sql()[0].count("SELECT") == 1
        assert sorted(select(x.upper() for x in logins if "n" in x)) == ["ANN"]
        assert sorted(select(x for x in logins if not x.endswith("e"))) == ["", "ann"]
        assert select(x for x in logins if x is None)[:] == [None]  # Bob has no login
        doubled = select(s.gpa * 2 for s in Student if s.group.name == "g1")
        assert sorted(select(v for v in doubled if v > 7)) == [8.0]
        # grouped values: a condition on the aggregate goes to HAVING
        per_group = select((s.group.name, count(s)) for s in Student if s.group is not None)
        assert select(name for name, n in per_group if n > 1 and name != "g2")[:] == ["g1"]
        # selecting only the aggregate keeps the groups of the query it reads: one count per group
        assert select(n for name, n in per_group)[:] == [2, 2]
        assert sorted(select(n for g, n in select((g, count(s)) for g in Group for s in g.students))) == [2, 2]
        # text queries read the source query from the caller's scope
        assert sorted(select("x for x in logins if x != ''")) == ["ann", "dee"]


def test_in_a_query_of_values(school) -> None:
    """``s.login in q`` where ``q`` selects one value: EXISTS of a row with that value (a missing
    value is in no query, so ``not in`` selects it)."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        logins = select(s.login for s in Student if s.gpa > 3)
        assert names(select(s for s in Student if s.login in logins)) == ["Ann", "Dee"]
        assert names(select(s for s in Student if s.login not in logins)) == ["Bob", "Cid", "Eve"]
        best_groups = select(s.group.name for s in Student if s.gpa > 3.5)
        assert names(select(g for g in Group if g.name in best_groups)) == ["g1"]
        with pytest.raises(TranslationError, match="query of tuples"):
            pairs = select((t.login, t.name) for t in Student)
            select(s for s in Student if s.login in pairs)[:]


def test_query_over_a_query_of_tuples_unpacks(school) -> None:
    """``for a, b in q`` over a query of tuples names each item; the object's item stays an object."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        pairs = select((s.name, s.gpa) for s in Student if s.gpa > 1)
        assert sorted(select(n for n, g in pairs if g >= 3.5)) == ["Ann", "Dee"]
        assert sorted(select((g, n) for n, g in pairs if n < "C")) == [(3.0, "Bob"), (4.0, "Ann")]
        with_objects = select((s, s.gpa * 10) for s in Student)
        top = select(s for s, score in with_objects if score > 30)
        assert names(top) == ["Ann", "Dee"]
        assert names(select(s for s, score in with_objects if score > 30 and s.group.name == "g2")) == ["Dee"]
        assert sorted(select(s.name for s, score in with_objects if score < 20)) == ["Eve"]


def test_query_over_a_generator_and_reused_names(school) -> None:
    """The first ``for`` may iterate a generator; a nested generator may reuse the query's name."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        good = (s for s in Student if s.gpa > 2)
        assert names(select(x for x in good if x.gpa < 4)) == ["Bob", "Dee"]
        assert names(select(x for x in (s for s in Student if s.gpa > 2) if x.login)) == ["Ann", "Dee"]
        best = select(s for s in Student if s.gpa == max(s.gpa for s in Student))
        assert names(best) == ["Ann"]
        # the nested generator's `s` is its own object, not the query's
        above = select(s for s in Student if s.gpa > min(s.gpa for s in Student if s.group is not None))
        assert names(above) == ["Ann", "Bob", "Dee"]


def test_query_over_a_limited_query_keeps_its_rows(school) -> None:
    """Over a limited query of objects, values keep its order and its repeats (no DISTINCT)."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        first_three = select(s for s in Student).order_by(desc(Student.gpa)).limit(3)
        assert select(s.group.name for s in first_three)[:] == ["g1", "g2", "g1"]
        assert select(s.name for s in first_three if s.gpa < 4)[:] == ["Dee", "Bob"]


def test_in_a_limited_query(school) -> None:
    """``x in q`` where ``q`` has a limit or offset: among the rows the limit keeps, in ``q``'s order
    (a missing reference is in no query, so ``not in`` selects it)."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        second_and_third = select(s for s in Student).order_by(desc(Student.gpa)).limit(2, offset=1)
        assert names(select(s for s in Student if s in second_and_third)) == ["Bob", "Dee"]
        assert names(select(s for s in Student if s not in second_and_third)) == ["Ann", "Cid", "Eve"]
        assert names(select(s for s in Student if s.mentor in second_and_third)) == ["Dee"]
        assert names(select(s for s in Student if s.mentor not in second_and_third)) == ["Ann", "Bob", "Cid", "Eve"]
        skipped = select(s for s in Student).order_by(Student.name).limit(None, offset=3)
        assert names(select(s for s in Student if s in skipped)) == ["Dee", "Eve"]
        # of values: the first two logins in order ("" comes first), DISTINCT as the query has it
        logins = select(s.login for s in Student if s.login is not None).order_by(1).limit(2)
        assert logins[:] == ["", "ann"]
        assert names(select(s for s in Student if s.login in logins)) == ["Ann", "Cid"]
        assert names(select(s for s in Student if s.login not in logins)) == ["Bob", "Dee", "Eve"]


def test_tuple_in_a_query_of_tuples(school) -> None:
    """``(a, b) in q`` and ``not in q`` where ``q`` selects tuples of as many values."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        pairs = select((t.name, t.login) for t in Student if t.gpa > 3)
        assert names(select(s for s in Student if (s.name, s.login) in pairs)) == ["Ann", "Dee"]
        assert names(select(s for s in Student if (s.name, s.login) not in pairs)) == ["Bob", "Cid", "Eve"]
        assert names(select(s for s in Student if (s.login, s.name) in pairs)) == []
        by_group = select((t.group.name, t.gpa) for t in Student if t.login)
        assert names(select(s for s in Student if (s.group.name, s.gpa) in by_group and s.gpa > 2)) == ["Ann", "Dee"]
        single = select(t.name for t in Student)
        with pytest.raises(TranslationError, match="takes a query selecting as many values"):
            select(s for s in Student if (s.name, s.login) in single)[:]
        with_objects = select((t, t.login) for t in Student)
        with pytest.raises(TranslationError, match="takes a query selecting as many values"):
            select(s for s in Student if (s, s.login) in with_objects)[:]
        with pytest.raises(TranslationError, match="with a limit or offset is not supported yet"):
            select(s for s in Student if (s.name, s.login) in pairs.limit(1))[:]


def test_group_concat_of_a_nested_generator(school) -> None:
    """``group_concat(gen)`` in a query: the texts of the nested query's rows, joined (None over no rows)."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        best = select(s for s in Student if s.name in group_concat(t.name for t in Student if t.gpa > 3))
        assert names(best) == ["Ann", "Dee"]
        joined = dict(select((g.name, group_concat((s.name for s in g.students), sep="+")) for g in Group))
        assert sorted(joined["g1"].split("+")) == ["Ann", "Bob"] and joined["g3"] is None
        keys = select(group_concat(c for c in s.courses) for s in Student if s.name == "Ann")[:]
        assert sorted(keys[0].split(",")) == sorted(str(c.id) for c in Course if c.title != "Empty")
        with pytest.raises(TranslationError, match="takes a str sep"):
            select(s for s in Student if s.name in group_concat((t.name for t in Student), sep=1))[:]


def test_count_of_a_many_to_many_collection_reads_its_join_table(school) -> None:
    """``count(s.courses)``, ``len()`` and ``.count()`` of a many-to-many collection count its rows of
    the join table, without reading the members' table."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        for query in (
            select(s for s in Student if count(s.courses) == 2),
            select(s for s in Student if len(s.courses) > 1),
            select(s for s in Student if s.courses.count() == 2),
        ):
            assert names(query) == ["Ann"]
            sql = query.sql()[0]
            assert sql.count("SELECT") == 2 and Student.courses.table in sql
        assert sorted(select((c.title, count(c.students)) for c in Course)) == [("Algebra", 2), ("Empty", 0), ("Poetry", 2)]
        # with a condition on the members, their table is read
        assert names(select(s for s in Student if s.courses.count(lambda c: c.credits > 4) == 1)) == ["Ann", "Bob"]


def test_count_of_an_int_attribute(school) -> None:
    """``count(c.credits)`` of an int attribute counts its values (distinct unless told), and is not
    taken for ``count('*')``."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        every = select(count(c.credits, distinct=False) for c in Course)
        assert every[:] == [3] and "DISTINCT" not in every.sql()[0]
        assert select(count(c.credits) for c in Course)[:] == [3]


def test_query_over_a_limited_query_of_values(school) -> None:
    """Over a limited query selecting its objects among values: the values of the rows the limit
    keeps, in that query's order (a position ordering by an object orders by its key)."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        ranked = select((g, count(g.students)) for g in Group).order_by(-2, 1).limit(2)
        assert [(g.name, n) for g, n in ranked] == [("g1", 2), ("g2", 2)]
        assert select((g.name, n) for g, n in ranked)[:] == [("g1", 2), ("g2", 2)]
        assert select((g.name, n) for g, n in ranked).limit(1, offset=1)[:] == [("g2", 2)]
        assert select(g.name for g, n in ranked if g.dept.name == "Arts")[:] == ["g2"]
        by_gpa = select((s, s.gpa) for s in Student).order_by(-2).limit(3, offset=1)
        assert select(s.name for s, gpa in by_gpa)[:] == ["Dee", "Bob", "Cid"]
        assert select(gpa for s, gpa in by_gpa if gpa < 3.5)[:] == [3.0, 2.0]
        with pytest.raises(TranslationError, match="selects the objects of its one `for`"):
            select(x for x in select(s.name for s in Student).limit(2))
        with pytest.raises(TranslationError, match="selects the objects of its one `for`"):
            select(n for g, n in select((s.group, count(s)) for s in Student).limit(2))


def test_query_over_a_query_errors(school) -> None:
    """Unpacking that does not match the source query, a list, a limited query of values."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        objects = select(s for s in Student if s.gpa > 1)
        with pytest.raises(TranslationError, match=r'Too many values to unpack "for a, b in select\(s for \.\.\.\)" \(expected 2, got 1\)'):
            select(a for a, b in objects)
        triples = select((s.name, s.group, s.gpa) for s in Student)
        with pytest.raises(TranslationError, match=r"Not enough values to unpack .*\(expected 2, got 3\)"):
            select(x for x, y in triples)
        with pytest.raises(NotImplementedError, match=r"Please unpack a tuple of \(s.name, s.group, s.gpa\)"):
            select(x for x in triples)
        with pytest.raises(TranslationError, match="not a list of objects"):
            select(x for x in objects[:])


# -- composite keys -----------------------------------------------------------------------------------


def test_composite_keys_in_tuples_and_objects(db: Database) -> None:
    """``(a, b) in rows``, ``obj in objs`` and ``obj != other`` for an entity keyed by two columns."""

    class Term(db.Entity):
        name = Required(str)
        year = Required(int)
        credits = Required(int)
        PrimaryKey(name, year)

    db.generate_mapping(create_tables=True)
    with db_session:
        a1, a2, b1 = Term(name="a", year=1, credits=3), Term(name="a", year=2, credits=4), Term(name="b", year=1, credits=5)
    with db_session:
        wanted = [("a", 2), ("b", 1), ("c", 9)]
        assert sorted(select(t.credits for t in Term if (t.name, t.year) in wanted)) == [4, 5]
        assert select(t.credits for t in Term if (t.name, t.year) not in wanted)[:] == [3]
        assert select(t.credits for t in Term if (t.name, t.year) in [])[:] == []
        first, second = Term["a", 1], Term["b", 1]
        assert sorted(select(t.credits for t in Term if t in (first, second))) == [3, 5]
        assert select(t.credits for t in Term if t not in [first, second])[:] == [4]
        assert sorted(select(t.credits for t in Term if t != first)) == [4, 5]
        later = select(t.credits for t in Term if (t.name, t.year) in ((u.name, u.year + 1) for u in Term))
        assert later[:] == [4]
        with pytest.raises(TranslationError, match="tuples of 2 values"):
            select(t for t in Term if (t.name, t.year) in [("a", 1, 2)])[:]
        with pytest.raises(QueryError, match="composite primary key"):
            select(t for t in Term).group_concat()
        # over a limited query of values selecting objects of a composite key: by both key columns
        top = select((t, t.credits) for t in Term).order_by(-2).limit(2)
        assert select(c for t, c in top)[:] == [5, 4]
        assert select((t.name, t.year) for t, c in top if c < 5)[:] == [("a", 2)]


# -- errors ---------------------------------------------------------------------------------------


def test_query_messages_and_group_concat_of_objects(school) -> None:
    """Negative slices, a scope value selected, a computed ``distinct``; group_concat of objects."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        query = select(s for s in Student).order_by(Student.id)
        with pytest.raises(QueryError, match="Parameter 'start' of slice object cannot be negative"):
            query[-3:2]
        with pytest.raises(QueryError, match="Parameter 'stop' of slice object cannot be negative"):
            query[1:-1]
        a = 100
        with pytest.raises(TranslationError, match="External parameter 'a' cannot be used as query result"):
            select(a for s in Student)
        with pytest.raises(TranslationError, match=r"`distinct` value should be True or False. Got: s.gpa > 1"):
            select(count(s, distinct=s.gpa > 1) for s in Student)
        ids = [str(s.id) for s in query]
        assert sorted(select(s for s in Student).group_concat().split(",")) == ids
        assert sorted(select(s for s in Student if s.gpa > 2).group_concat(".").split(".")) == ids[:2] + ids[3:4]
        joined = select(group_concat(s.name, "-") for s in Student if s.group.name == "g1")[:]
        assert sorted(joined[0].split("-")) == ["Ann", "Bob"]
        assert query.count(distinct=True) == 5
        # a query made from one already iterated runs itself (it does not reuse that result)
        good = select(x for x in query if x.gpa > 2)
        assert names(good) == ["Ann", "Bob", "Dee"] and len(query) == 5 and len(query.filter(lambda s: s.gpa > 2)) == 3
        assert names(good.where(lambda x: x.gpa < 4)) == ["Bob", "Dee"]
        with pytest.raises(QueryError, match="Lambda argument `s` does not correspond to any variable"):
            good.where(lambda s: s.gpa < 4)



def test_path_errors_name_the_attribute(school) -> None:
    """An unknown attribute on a path, or a path through a plain column, names both."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        with pytest.raises(UnknownAttributeError, match="Entity Group has no attribute 'title'"):
            select(s for s in Student if s.group.title == "x")
        # the message is the path as Pony's AttributeError names it; the note says why
        with pytest.raises(QueryAttributeError, match=r"^s\.name\.first\nStudent\.name is not a reference"):
            select(s for s in Student if s.name.first.upper() == "x")
        with pytest.raises(AttributeError, match=r"^s\.group\.name\.foo\n"):
            select(s for s in Student if s.group.name.foo.bar == "x")
        with pytest.raises(
            IncomparableTypesError,
            match=r"^Incomparable types 'Set of Student' and 'int' in expression: g\.students == 3\n.*collection can only be tested",
        ):
            select(g for g in Group if g.students == 3)
        with pytest.raises(IncomparableTypesError, match="'str' and 'Set of Student' in expression: g.name == g.students"):
            select(g for g in Group if g.name == g.students)
        with pytest.raises(UnsupportedQueryError, match="Comparing two collections"):
            select(g for g in Group for g2 in Group if g.students == g2.students)


def test_a_generator_over_an_objects_collection_is_a_query(school, sql_log) -> None:
    """``select(s for s in g.students if ...)`` is the query of the members; Python's sum() keeps
    reading the loaded members."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        g1 = Group.get(name="g1")
        assert names(select(s for s in g1.students)) == ["Ann", "Bob"]
        assert names(select(s for s in g1.students if s.gpa > 3.5)) == ["Ann"]
        assert count(s for s in g1.students) == 2
        algebra = Course.get(title="Algebra")
        assert names(select(s for s in algebra.students if s.name != "Ann")) == ["Bob"]
        assert sum(s.gpa for s in g1.students) == 7.0
        assert sorted(s.name for s in g1.students) == ["Ann", "Bob"]
        members = iter(g1.students)
        g1.students.add(Student(name="Fay"))  # the members are read at the first next()
        assert sorted(s.name for s in members) == ["Ann", "Bob", "Fay"]
        assert names(select(s for s in g1.students)) == ["Ann", "Bob", "Fay"]


def test_a_lambda_query_of_the_scope_inside_a_generator(school) -> None:
    """``s not in Student.select(lambda s: ...)``: the lambda's ``s`` is its own parameter, so the
    inner query is a value of the scope (a subquery), not a read of the outer ``s``."""
    Dept, Group, Student, Course, Passport = school
    with db_session:
        assert names(select(s for s in Student if s not in Student.select(lambda s: s.gpa > 2.5))) == ["Cid", "Eve"]
        # a lambda reading the outer query's object would be a correlated query: not yet
        with pytest.raises(UnsupportedQueryError, match="A lambda"):
            select(s for s in Student if s in Student.select(lambda x: x.gpa > s.gpa))
        assert names(select(g for g in Group if g in Group.select(lambda g: g.name != "g3"))) == ["g1", "g2"]


def test_constructs_pony_refuses_raise_its_classes(school) -> None:
    """``*args``, a bound method of an object, an object looked up by a row's value: UnsupportedQueryError
    (a NotImplementedError) whose message is the construct; an unknown method of a str attribute:
    QueryAttributeError (an AttributeError)."""
    Dept, Group, Student, Course, Passport = school

    class Scale:
        def twice(self, a: float, b: float) -> float:
            return a * b

    twice = Scale().twice
    args = ("a",)
    with db_session:
        with pytest.raises(NotImplementedError, match=r"^\*args is not supported\n"):
            select(s for s in Student if s.name.upper(*args))
        with pytest.raises(UnsupportedQueryError, match=r"^twice\n.*bound to"):
            select(s for s in Student if twice(s.gpa, 2) > 3)
        with pytest.raises(UnsupportedQueryError, match=r"^Group\[s\.group\.id\]\n"):
            select(s for s in Student if Group[s.group.id].name == "g1")
        with pytest.raises(QueryAttributeError, match=r"^'str' object has no attribute 'shout': s\.name\.shout\n"):
            select(s for s in Student if s.name.shout() == "x")
        with pytest.raises(UnsupportedQueryError, match=r"The method title\(\)"):
            select(s for s in Student if s.name.title() == "Ann")


def test_names_of_the_scope_that_are_not_values(school) -> None:
    """A name not assigned yet raises QueryNameError (a NameError); selecting a scope name by itself
    is refused, and one not defined raises ExprEvalError naming it."""
    Dept, Group, Student, Course, Passport = school

    def by_gpa() -> Any:
        if False:
            gpa = 3.0
        return lambda s: s.gpa > gpa

    limit = 3
    with db_session:
        with pytest.raises(NameError, match=r"^Free variable `gpa` referenced before assignment") as info:
            Student.select(by_gpa())[:]
        assert isinstance(info.value, ExprEvalError)
        with pytest.raises(TranslationError, match="External parameter 'limit' cannot be used as query result"):
            select(limit for s in Student)[:]
        with pytest.raises(ExprEvalError, match="`undefined_name` raises NameError"):
            select(undefined_name for s in Student)[:]  # noqa: F821
        # a lookup of the scope refusing its key is the scope value's failure, not a comparison's
        with pytest.raises(ExprEvalError, match=r"^`Group\['one'\]` raises AttributeTypeError: .*Group\.id"):
            select(s for s in Student if s.group == Group["one"])[:]


# -- awaited ----------------------------------------------------------------------------------------


def test_joined_queries_run_awaited(adb: AsyncDatabase) -> None:
    """Paths, collections and nested generators work on an AsyncDatabase."""
    model = declare(adb)
    Dept, Group, Student, Course, Passport = model

    async def main() -> tuple[Any, ...]:
        async with db_session:
            math = Dept(name="Math")
            g1 = Group(name="g1", dept=math)
            Group(name="g2")
            algebra = Course(title="Algebra", credits=5)
            Student(name="Ann", group=g1, courses=[algebra])
            Student(name="Bob", group=g1)
        async with db_session:
            by_dept = await select(s for s in Student if s.group.dept.name == "Math").afetch()
            with_course = await select(g for g in Group if exists(s for s in g.students if s.courses)).afetch()
            counted = await select(g for g in Group if count(g.students) == 0).acount()
            sizes = await left_join((g.name, count(s)) for g in Group for s in g.students).afetch()
            top = select(s for s in Student).order_by(Student.name).limit(1)
            first = await select(s.name for s in Student if s in top).afetch()
            return names(by_dept), names(with_course), counted, sorted(sizes), first

    assert asyncio.run(main()) == (["Ann", "Bob"], ["g1"], 1, [("g1", 2), ("g2", 0)], ["Ann"])


def test_set_based_writes_with_paths_and_nested_queries(db: Any, sql_log: Any) -> None:
    """delete(bulk=True) and update() whose conditions read other tables (a reference path, a
    nested query over the same table) pick the rows by key, composite keys included."""

    class Teacher(db.Entity):
        id = PrimaryKey(int)
        name = Required(str)
        marks = Set("Mark")

    class Pupil(db.Entity):
        id = PrimaryKey(int)
        marks = Set("Mark")

    class Mark(db.Entity):
        pupil = Required(Pupil)
        subject = Required(str)
        PrimaryKey(pupil, subject)
        value = Required(str)
        teacher = Required(Teacher)

    db.generate_mapping(create_tables=True)

    def fill() -> None:
        with db_session:
            select(m for m in Mark).delete(bulk=True)
            Teacher.select().delete(bulk=True)
            Pupil.select().delete(bulk=True)
        with db_session:
            ann, bob = Teacher(id=1, name="Ann"), Teacher(id=2, name="Bob")
            p1, p2 = Pupil(id=1), Pupil(id=2)
            Mark(pupil=p1, subject="math", value="A", teacher=ann)
            Mark(pupil=p1, subject="art", value="B", teacher=bob)
            Mark(pupil=p2, subject="math", value="C", teacher=ann)

    def left() -> list[tuple[int, str, str]]:
        with db_session:
            return sorted((m.pupil.id, m.subject, m.value) for m in Mark.select())

    fill()
    with db_session:
        sql_log.clear()
        assert select(m for m in Mark if m.teacher.name == "Ann").delete(bulk=True) == 2
        deletes = [s for s in sql_log.statements if s.startswith("DELETE")]
        assert len(deletes) == 1 and " IN (SELECT " in deletes[0]
    assert left() == [(1, "art", "B")]

    fill()
    with db_session:  # every mark but the best one (a nested query over the same table)
        gone = select(m for m in Mark if exists(m2 for m2 in Mark if m2.value < m.value)).delete(bulk=True)
        assert gone == 2
    assert left() == [(1, "math", "A")]

    fill()
    with db_session:
        assert select(m for m in Mark if m.teacher.id == 2 or m.pupil.id == 2).delete(bulk=True) == 2
    assert left() == [(1, "math", "A")]

    fill()
    with db_session:
        assert Mark.select(lambda m: m.teacher.name == "Bob").update(value="F") == 1
    assert left() == [(1, "art", "F"), (1, "math", "A"), (2, "math", "C")]

    fill()
    with db_session:  # conditions on the table's own columns keep the plain statement
        sql_log.clear()
        assert select(m for m in Mark if m.value == "C").delete(bulk=True) == 1
        deletes = [s for s in sql_log.statements if s.startswith("DELETE")]
        assert len(deletes) == 1 and "SELECT" not in deletes[0]
    assert left() == [(1, "art", "B"), (1, "math", "A")]
