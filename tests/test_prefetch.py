"""prefetch() (docs/relationships.md, "Prefetching"): relationship attributes, lazy column
attributes and entity classes, loaded for the whole result with one query per attribute."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nextorm import (
    Database,
    DatabaseSessionIsOver,
    LongStr,
    Optional,
    PrimaryKey,
    QueryError,
    Required,
    Set,
    db_session,
    select,
)


@pytest.fixture
def school(db: Database) -> SimpleNamespace:
    """Groups 1 (students s1, s2) and 2 (s3) with a lazy ``major``; students with a lazy biography."""

    class Group(db.Entity):
        number = PrimaryKey(int)
        major = Required(str, lazy=True)
        students = Set("Student")

    class Student(db.Entity):
        id = PrimaryKey(int)
        name = Required(str)
        group = Required(Group)
        biography = Optional(LongStr)
        courses = Set("Course")

    class Course(db.Entity):
        title = Required(str)
        students = Set(Student)

    db.generate_mapping(create_tables=True)
    with db_session:
        g1, g2 = Group(number=1, major="Math"), Group(number=2, major="Physics")
        c1 = Course(title="c1")
        Student(id=1, name="s1", group=g1, biography="bio 1", courses=[c1])
        Student(id=2, name="s2", group=g1, biography="bio 2")
        Student(id=3, name="s3", group=g2, biography="bio 3", courses=[c1])
    return SimpleNamespace(db=db, Group=Group, Student=Student, Course=Course)


def statements(db: Database) -> int:
    """How many statements this thread ran on ``db`` since the last call."""
    count = db.local_stats[None].db_count if None in db.local_stats else 0
    db.merge_local_stats()
    return count


def test_prefetch_of_an_entity_loads_every_reference_to_it(school: SimpleNamespace) -> None:
    """``prefetch(Group)`` loads each student's group (one query); collections stay unloaded."""
    db, Student = school.db, school.Student
    statements(db)
    with db_session:
        students = Student.select().order_by(Student.id).prefetch(school.Group)[:]
        assert statements(db) == 2
    assert [s.group.number for s in students] == [1, 1, 2]
    with pytest.raises(DatabaseSessionIsOver, match=r"Cannot load attribute Group\[1\]\.major"):
        students[0].group.major  # lazy: only read when named
    with pytest.raises(DatabaseSessionIsOver, match=r"Cannot load collection Student\[1\]\.courses"):
        set(students[0].courses)


def test_prefetch_of_a_lazy_attribute_reads_it_with_the_rows(school: SimpleNamespace) -> None:
    """``prefetch(Student.group, Group.major)`` reads the lazy ``major`` with the groups: still one query each."""
    db, Student = school.db, school.Student
    statements(db)
    with db_session:
        students = Student.select().order_by(Student.id).prefetch(Student.group, school.Group.major)[:]
        assert statements(db) == 2
    assert [s.group.major for s in students] == ["Math", "Math", "Physics"]


def test_prefetch_of_a_lazy_attribute_of_the_result(school: SimpleNamespace) -> None:
    """``prefetch(Student.biography)`` makes the lazy value readable after the session; without it, it is not."""
    Student = school.Student
    with db_session:
        with_bio = Student.select(Student.id == 1).prefetch(Student.biography).first()
    assert with_bio.biography == "bio 1"
    with db_session:
        without = Student.select(Student.id == 1).first()
    with pytest.raises(DatabaseSessionIsOver, match=r"Cannot load attribute Student\[1\]\.biography"):
        without.biography


def test_prefetch_reads_lazy_attributes_of_collection_members_in_the_same_query(school: SimpleNamespace) -> None:
    """``prefetch(Group.students, Student.biography)``: two queries, whatever the number of groups and students."""
    db, Group, Student = school.db, school.Group, school.Student
    statements(db)
    with db_session:
        groups = Group.select().order_by(Group.number).prefetch(Group.students, Student.biography)[:]
        assert statements(db) == 2
        assert sorted(s.biography for g in groups for s in g.students) == ["bio 1", "bio 2", "bio 3"]
        assert statements(db) == 0
    with db_session:  # many-to-many members too
        courses = school.Course.select().prefetch(school.Course.students, Student.biography)[:]
        assert statements(db) == 2
    assert sorted(s.biography for s in courses[0].students) == ["bio 1", "bio 3"]


def test_prefetch_order_of_arguments_does_not_matter(school: SimpleNamespace) -> None:
    """An attribute of an entity reached through another prefetched attribute is loaded whatever the order."""
    Group, Student = school.Group, school.Student
    with db_session:
        students = Student.select().order_by(Student.id).prefetch(Group.major, Group.students, Student.group)[:]
    assert [len(s.group.students) for s in students] == [2, 2, 1]
    assert students[2].group.major == "Physics"


def test_prefetch_of_a_query_of_values_loads_the_objects_among_them(school: SimpleNamespace) -> None:
    """A query selecting tuples prefetches for the objects in them: ``(s.name, s.group)`` with ``Group.major``."""
    with db_session:
        rows = select((s.name, s.group) for s in school.Student).order_by(1).prefetch(
            school.Group, school.Group.major
        )[:]
    assert [(name, group.major) for name, group in rows] == [("s1", "Math"), ("s2", "Math"), ("s3", "Physics")]


def test_prefetch_refuses_what_is_neither_entity_nor_attribute(school: SimpleNamespace, db: Database) -> None:
    """Anything else is a TypeError naming it, as is an entity of another database."""
    with db_session:
        with pytest.raises(TypeError, match=r"^Argument of prefetch\(\) query method must be entity class or attribute\. Got: 111$"):
            school.Student.select().prefetch(111)
        with pytest.raises(QueryError, match="Got: 'Group'"):
            school.Student.select().prefetch("Group")
    other = Database("sqlite", ":memory:")

    class Other(other.Entity):
        name = Required(str)

    other.generate_mapping(create_tables=True)
    with db_session:
        with pytest.raises(QueryError, match="another database"):
            school.Student.select().prefetch(Other)
