"""Relations to and from entities with composite primary keys (README "Composite keys").

A reference to an entity whose primary key has several columns is stored in several columns
(``course_name``, ``course_semester``, or the names given by ``columns=[...]``) under one
multi-column foreign key; a many-to-many join table holds every key column of both sides; a
primary key may be made of references. Every test runs on SQLite and PostgreSQL (conftest's
``db``); the module runs once per hot path (CI sets ``NEXTORM_NO_EXTENSIONS=1`` for the second).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from nextorm import (
    AsyncDatabase,
    Database,
    MappingError,
    ObjectNotFound,
    OptimisticCheckError,
    Optional,
    PrimaryKey,
    QueryError,
    Required,
    Set,
    TransactionIntegrityError,
    composite_index,
    composite_key,
    db_session,
    make_proxy,
    select,
)

# -- the model -----------------------------------------------------------------------------------


def declare(db: Any) -> SimpleNamespace:
    """Groups of students; courses keyed by (name, semester); grades keyed by (student, course)."""

    class Group(db.Entity):
        number = PrimaryKey(int)
        students = Set("Student")

    class Student(db.Entity):
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        group = Optional(Group)
        courses = Set("Course")
        grades = Set("Grade")
        mentor_of = Optional("Course", reverse="mentor")

    class Course(db.Entity):
        name = Required(str)
        semester = Required(int)
        PrimaryKey(name, semester)
        students = Set(Student)
        grades = Set("Grade")
        mentor = Optional(Student)
        lectures = Set("Lecture")

    class Grade(db.Entity):
        student = Required(Student)
        course = Required(Course)
        PrimaryKey(student, course)
        value = Required(int)
        remarks = Set("Remark")

    class Lecture(db.Entity):
        id = PrimaryKey(int, auto=True)
        course = Required(Course, columns=["c_name", "c_sem"])
        topic = Required(str)

    class Remark(db.Entity):
        id = PrimaryKey(int, auto=True)
        grade = Required(Grade)
        text = Required(str)

    db.generate_mapping(create_tables=True)
    return SimpleNamespace(
        db=db, Group=Group, Student=Student, Course=Course, Grade=Grade, Lecture=Lecture, Remark=Remark
    )


@pytest.fixture
def m(db: Database) -> SimpleNamespace:
    """The model on ``db`` with Ann (group 1; Math/1 and Physics/2, graded 5 in Math/1) and Bob."""
    models = declare(db)
    with db_session:
        group = models.Group(number=1)
        math = models.Course(name="Math", semester=1)
        physics = models.Course(name="Physics", semester=2)
        ann = models.Student(name="Ann", group=group, courses=[math, physics])
        models.Student(name="Bob", group=group)
        models.Grade(student=ann, course=math, value=5)
        models.Lecture(course=math, topic="Sets")
    return models


def columns_of(conn: Any, db_kind: str, table: str) -> list[str]:
    """The column names of ``table`` as another client sees them."""
    if db_kind == "sqlite":
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")').fetchall()]
    return [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position",
            (table.lower(),),
        ).fetchall()
    ]


# -- schema ----------------------------------------------------------------------------------------


def test_reference_to_composite_key_has_a_column_per_key_column(
    m: SimpleNamespace, other_connection: Any, db_kind: str
) -> None:
    """``Required(Course)`` with Course keyed by (name, semester) is stored in course_name, course_semester."""
    assert [c.lower() for c in columns_of(other_connection, db_kind, "Grade")] == [
        "student",
        "course_name",
        "course_semester",
        "value",
    ]
    rows = other_connection.execute('SELECT student, course_name, course_semester, value FROM Grade').fetchall()
    assert [tuple(r) for r in rows] == [(1, "Math", 1, 5)]


def test_columns_option_names_the_columns_of_a_reference(
    m: SimpleNamespace, other_connection: Any, db_kind: str
) -> None:
    """``Required(Course, columns=["c_name", "c_sem"])`` stores the course's key in those columns."""
    assert [c.lower() for c in columns_of(other_connection, db_kind, "Lecture")] == [
        "id",
        "c_name",
        "c_sem",
        "topic",
    ]
    assert [tuple(r) for r in other_connection.execute('SELECT c_name, c_sem FROM Lecture').fetchall()] == [
        ("Math", 1)
    ]


def test_columns_option_must_match_the_key_width(db: Database) -> None:
    """A ``columns=`` list whose length differs from the target's key is a MappingError naming both."""

    class Course(db.Entity):
        name = Required(str)
        semester = Required(int)
        PrimaryKey(name, semester)
        lectures = Set("Lecture")

    class Lecture(db.Entity):
        course = Required(Course, columns=["only_one"])

    with pytest.raises(MappingError, match=r"Lecture\.course .*1 column.* Course has 2"):
        db.generate_mapping(create_tables=True)


def test_multi_column_foreign_key_is_enforced(m: SimpleNamespace, other_connection: Any, db_kind: str) -> None:
    """The reference's columns form one foreign key: a row naming a course that does not exist is refused."""
    if db_kind == "sqlite":
        other_connection.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(Exception):
        other_connection.execute(
            'INSERT INTO Grade (student, course_name, course_semester, value) VALUES (2, ?, ?, 1)',
            ("Math", 2),
        )
    other_connection.execute(
        'INSERT INTO Grade (student, course_name, course_semester, value) VALUES (2, ?, ?, 1)', ("Physics", 2)
    )


def test_join_table_holds_every_key_column(m: SimpleNamespace, other_connection: Any, db_kind: str) -> None:
    """Student.courses <-> Course.students: the join table has student, course_name, course_semester."""
    assert sorted(c.lower() for c in columns_of(other_connection, db_kind, "Course_Student")) == [
        "course_name",
        "course_semester",
        "student",
    ]
    rows = other_connection.execute(
        'SELECT student, course_name, course_semester FROM Course_Student ORDER BY course_name'
    ).fetchall()
    assert [tuple(r) for r in rows] == [(1, "Math", 1), (1, "Physics", 2)]


def test_join_table_options_table_columns_and_reverse_columns(
    db: Database, other_connection: Any, db_kind: str
) -> None:
    """``Set(..., table=, columns=, reverse_columns=)`` name the join table and its columns on both sides."""

    class Room(db.Entity):
        building = Required(str)
        number = Required(int)
        PrimaryKey(building, number)
        talks = Set("Talk", table="talk_room", columns=["talk_ref"], reverse_columns=["b", "n"])

    class Talk(db.Entity):
        id = PrimaryKey(int, auto=True)
        rooms = Set(Room)

    db.generate_mapping(create_tables=True)
    with db_session:
        Talk(rooms=[Room(building="A", number=1)])
    assert sorted(c.lower() for c in columns_of(other_connection, db_kind, "talk_room")) == ["b", "n", "talk_ref"]
    with db_session:
        assert [r.number for r in Talk[1].rooms] == [1]
        assert [t.id for t in Room["A", 1].talks] == [1]


def test_composite_index_creates_an_index_over_its_columns(db: Database, other_connection: Any, db_kind: str) -> None:
    """``composite_index(a, "b")`` (attributes or their names) adds a non-unique index over both columns."""

    class Event(db.Entity):
        place = Required(str)
        day = Required(int)
        composite_index(place, "day")

    db.generate_mapping(create_tables=True)
    if db_kind == "sqlite":
        names = [row[1] for row in other_connection.execute("PRAGMA index_list(Event)").fetchall()]
        unique = {row[1]: row[2] for row in other_connection.execute('PRAGMA index_list(Event)').fetchall()}
    else:
        found = other_connection.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'event' AND schemaname = current_schema()"
        ).fetchall()
        names = [row[0] for row in found]
        unique = {row[0]: int("UNIQUE" in row[1]) for row in found}
    index = [n for n in names if "place" in n and "day" in n]
    assert len(index) == 1 and unique[index[0]] == 0
    with db_session:
        Event(place="Hall", day=1)
        Event(place="Hall", day=1)  # not unique


def test_composite_key_and_index_refuse_bad_parts(db: Database) -> None:
    """Fewer than two parts, a part that is no attribute, or a collection is a TypeError."""
    with pytest.raises(TypeError, match="at least two"):

        class A(db.Entity):
            x = Required(int)
            composite_key(x)

    with pytest.raises(TypeError, match="123"):

        class B(db.Entity):
            composite_key(123, 456)

    with pytest.raises(TypeError, match=r"^Set attribute C\.d cannot be part of index$"):

        class C(db.Entity):
            x = Required(int)
            d = Set("D")
            composite_index(x, d)


# -- loading, identity, keys -------------------------------------------------------------------------


def test_identity_map_by_composite_reference_key(m: SimpleNamespace) -> None:
    """``Grade[student, course]``, with objects, keys or one value per column, is the one loaded object."""
    with db_session:
        grade = m.Grade.select().first()
        ann, math = m.Student[1], m.Course["Math", 1]
        assert m.Grade[ann, math] is grade
        assert m.Grade[1, ("Math", 1)] is grade
        assert m.Grade[1, "Math", 1] is grade
        assert m.Grade[grade.get_pk()] is grade
        assert grade.course is math and grade.student is ann


def test_get_pk_repr_and_to_dict_of_a_key_made_of_references(m: SimpleNamespace) -> None:
    """get_pk() gives one value per key column; repr shows the referred objects; to_dict their keys."""
    with db_session:
        grade = m.Grade[1, "Math", 1]
        assert grade.get_pk() == (1, "Math", 1)
        assert repr(grade) == "Grade[Student[1],Course['Math',1]]"
        assert grade.to_dict() == {"student": 1, "course": ("Math", 1), "value": 5}
        assert m.Lecture[1].to_dict() == {"id": 1, "course": ("Math", 1), "topic": "Sets"}


def test_missing_composite_reference_key_is_object_not_found(m: SimpleNamespace) -> None:
    """A key no row has raises ObjectNotFound; a key of the wrong width a TypeError."""
    with db_session:
        with pytest.raises(ObjectNotFound):
            m.Grade[2, "Math", 1]
        with pytest.raises(TypeError, match="Grade primary key"):
            m.Grade[1, "Math", 1, 0]


def test_reference_read_through_a_composite_key_loads_the_target(m: SimpleNamespace, sql_log: Any) -> None:
    """Reading ``lecture.course`` gives the Course by its two key columns; its values load on first read."""
    with db_session:
        lecture = m.Lecture[1]
        course = lecture.course
        assert (course.name, course.semester) == ("Math", 1)
        assert course is m.Course["Math", 1]


def test_assigning_and_comparing_composite_references(m: SimpleNamespace, other_connection: Any) -> None:
    """Assigning another Course writes both columns; queries compare a reference with an object or a key."""
    with db_session:
        m.Lecture[1].course = m.Course["Physics", 2]
    assert [tuple(r) for r in other_connection.execute('SELECT c_name, c_sem FROM Lecture').fetchall()] == [
        ("Physics", 2)
    ]
    with db_session:
        physics = m.Course["Physics", 2]
        assert m.Lecture.select(m.Lecture.course == physics).count() == 1
        assert m.Lecture.select(course=("Physics", 2)).count() == 1
        assert m.Lecture.select(m.Lecture.course != physics).count() == 0
        assert m.Lecture.select(m.Lecture.course.in_([physics, ("Math", 1)])).count() == 1
        assert m.Lecture.get(course=physics).topic == "Sets"
        with pytest.raises(QueryError, match="composite key"):
            m.Lecture.select(m.Lecture.course > physics)


def test_optional_composite_reference_set_to_none_and_back(m: SimpleNamespace, other_connection: Any) -> None:
    """An Optional reference to a composite key stores NULL in every column; ``is None`` finds it."""
    with db_session:
        assert m.Course["Math", 1].mentor is None
        m.Course["Math", 1].mentor = m.Student[2]
    with db_session:
        assert m.Course["Math", 1].mentor is m.Student[2]
        assert m.Student[2].mentor_of is m.Course["Math", 1]
        m.Student[2].mentor_of = None
    with db_session:
        assert m.Course["Math", 1].mentor is None


def test_new_object_referred_by_composite_reference_is_inserted_first(m: SimpleNamespace) -> None:
    """A new Course assigned to a new Lecture is inserted before it; the lecture stores its key."""
    with db_session:
        lecture = m.Lecture(course=m.Course(name="Art", semester=3), topic="Colour")
    with db_session:
        assert m.Lecture[lecture.id].course.get_pk() == ("Art", 3)


def test_optimistic_check_covers_every_column_of_a_reference(m: SimpleNamespace, other_connection: Any) -> None:
    """A reference read in this session and changed by another client fails the UPDATE's check."""
    with pytest.raises(OptimisticCheckError):
        with db_session:
            lecture = m.Lecture[1]
            assert lecture.course.name == "Math"
            other_connection.execute("UPDATE Lecture SET c_name = 'Physics', c_sem = 2")
            lecture.topic = "Relations"


# -- many-to-many ---------------------------------------------------------------------------------------


def test_many_to_many_between_composite_and_single_keys(m: SimpleNamespace, other_connection: Any) -> None:
    """Both sides load, change and persist; each link row holds the full keys of both objects."""
    with db_session:
        ann, bob = m.Student[1], m.Student[2]
        math = m.Course["Math", 1]
        assert sorted(c.name for c in ann.courses) == ["Math", "Physics"]
        assert [s.name for s in math.students] == ["Ann"]
        math.students.add(bob)
        ann.courses.remove(math)
        assert math.students.count() == 1
    rows = other_connection.execute(
        'SELECT student, course_name, course_semester FROM Course_Student ORDER BY student, course_name'
    ).fetchall()
    assert [tuple(r) for r in rows] == [(1, "Physics", 2), (2, "Math", 1)]
    with db_session:
        assert [c.get_pk() for c in m.Student[2].courses] == [("Math", 1)]
        assert m.Course["Math", 1].students.select(name="Bob").count() == 1


def test_many_to_many_between_two_composite_keys(db: Database, other_connection: Any, db_kind: str) -> None:
    """Both sides keyed by two columns: four columns in the join table, symmetric loading."""

    class Part(db.Entity):
        maker = Required(str)
        code = Required(int)
        PrimaryKey(maker, code)
        kits = Set("Kit")

    class Kit(db.Entity):
        year = Required(int)
        name = Required(str)
        PrimaryKey(year, name)
        parts = Set(Part)

    db.generate_mapping(create_tables=True)
    with db_session:
        Kit(year=2020, name="a", parts=[Part(maker="x", code=1), Part(maker="y", code=2)])
    assert sorted(c.lower() for c in columns_of(other_connection, db_kind, "Kit_Part")) == [
        "kit_name",
        "kit_year",
        "part_code",
        "part_maker",
    ]
    with db_session:
        assert sorted(p.get_pk() for p in Kit[2020, "a"].parts) == [("x", 1), ("y", 2)]
        assert [k.get_pk() for k in Part["y", 2].kits] == [(2020, "a")]
        Kit[2020, "a"].parts.remove(Part["x", 1])
    with db_session:
        assert [p.code for p in Kit[2020, "a"].parts] == [2]


# -- keys made of references ---------------------------------------------------------------------------------


def test_primary_key_made_of_one_reference(db: Database) -> None:
    """``PrimaryKey(Person)``: a profile's key is its person's; the key side holds the column."""

    class Person(db.Entity):
        name = Required(str)
        profile = Optional("Profile")

    class Profile(db.Entity):
        person = PrimaryKey(Person)
        bio = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        Profile(person=Person(name="Ann"), bio="hi")
    with db_session:
        profile = Profile[1]
        assert profile.person.name == "Ann"
        assert Person[1].profile is profile
        assert profile.get_pk() == 1
        assert repr(profile) == "Profile[Person[1]]"


def test_reference_to_an_entity_keyed_by_references(m: SimpleNamespace, other_connection: Any, db_kind: str) -> None:
    """A Remark refers to a Grade keyed by (student, course): three columns, loading by the nested key."""
    assert [c.lower() for c in columns_of(other_connection, db_kind, "Remark")] == [
        "id",
        "grade_student",
        "grade_course_name",
        "grade_course_semester",
        "text",
    ]
    with db_session:
        m.Remark(grade=m.Grade[1, "Math", 1], text="good")
    with db_session:
        remark = m.Remark[1]
        assert remark.grade is m.Grade[1, "Math", 1]
        assert remark.grade.value == 5
        assert [r.text for r in m.Grade[1, "Math", 1].remarks] == ["good"]


def test_deleting_the_target_cascades_through_composite_references(m: SimpleNamespace, other_connection: Any) -> None:
    """Deleting a course deletes its grades (Required reverse) and its links, by their full keys."""
    with db_session:
        m.Lecture[1].delete()
        m.Course["Math", 1].delete()
    assert other_connection.execute('SELECT COUNT(*) FROM Grade').fetchone()[0] == 0
    assert other_connection.execute('SELECT COUNT(*) FROM Course_Student').fetchone()[0] == 1


def test_prefetch_of_composite_references_and_collections(m: SimpleNamespace, sql_log: Any) -> None:
    """prefetch loads references and collections with composite keys in one query each."""
    with db_session:
        students = m.Student.select().prefetch(m.Student.courses, m.Student.grades, m.Grade.course)[:]
        sql_log.clear()
        ann = [s for s in students if s.name == "Ann"][0]
        assert sorted(c.name for c in ann.courses) == ["Math", "Physics"]
        assert [(g.course.name, g.value) for g in ann.grades] == [("Math", 5)]
        assert sql_log.statements == []


def test_proxy_of_an_object_keyed_by_references(m: SimpleNamespace) -> None:
    """make_proxy() of a Grade works in a later session; its repr shows one value per key column."""
    with db_session:
        proxy = make_proxy(m.Grade[1, "Math", 1])
    assert repr(proxy) == "<EntityProxy(Grade[1,'Math',1])>"
    with db_session:
        assert proxy == m.Grade[1, "Math", 1]
        assert proxy.value == 5
        assert proxy.course.name == "Math"


def test_async_database_with_composite_keys(adb: AsyncDatabase) -> None:
    """On an AsyncDatabase the same model loads references and collections with the awaitable twins."""
    models = declare(adb)

    async def main() -> Any:
        async with db_session:
            math = models.Course(name="Math", semester=1)
            ann = models.Student(name="Ann", courses=[math])
            models.Grade(student=ann, course=math, value=4)
        async with db_session:
            grade = await models.Grade.aget(student=1, course=("Math", 1))
            course = await grade.awaitable_attrs.course
            students = await course.awaitable_attrs.students
            return grade.value, course.semester, [s.name for s in students]

    async def wrapped() -> Any:
        try:
            return await main()
        finally:
            await adb.adisconnect()

    assert asyncio.run(wrapped()) == (4, 1, ["Ann"])


def test_duplicate_key_made_of_references_is_an_integrity_error(m: SimpleNamespace) -> None:
    """A second grade for the same (student, course), not loaded in the session, is refused at flush."""
    with pytest.raises(TransactionIntegrityError, match=r"Grade\[Student\[1\],Course\['Math',1\]\]"):
        with db_session:
            m.Grade(student=1, course=("Math", 1), value=1)


def test_query_paths_join_on_every_column_of_a_composite_key(m: SimpleNamespace) -> None:
    """``g.course.name`` and ``r.grade.course.name`` in queries join on all key columns of each reference."""
    with db_session:
        m.Remark(grade=m.Grade[1, "Math", 1], text="good")
        found = select(g for g in m.Grade if g.course.name == "Math" and g.course.semester == 1)[:]
        assert found == [m.Grade[1, "Math", 1]]
        assert select(g for g in m.Grade if g.course.name == "Physics")[:] == []
        assert [r.text for r in select(r for r in m.Remark if r.grade.course.name == "Math")] == ["good"]


def test_composite_reference_read_through_a_path_compares_column_by_column(m: SimpleNamespace) -> None:
    """``r.grade.course == c`` (a reference to a composite key reached through a join) compares
    each of its columns with the object's key, as the reference read directly does."""
    with db_session:
        math, physics = m.Course["Math", 1], m.Course["Physics", 2]
        m.Remark(grade=m.Grade[1, "Math", 1], text="good")
        assert [r.text for r in select(r for r in m.Remark if r.grade.course == math)] == ["good"]
        assert select(r for r in m.Remark if r.grade.course == physics)[:] == []
        assert [r.text for r in select(r for r in m.Remark if r.grade.course != physics)] == ["good"]
        graded = m.Grade[1, "Math", 1]
        assert [s.name for s in select(s for s in m.Student if graded in s.grades)] == ["Ann"]
        assert select(r for r in m.Remark if r.grade.course in (math, physics)).count() == 1
        assert select(r for r in m.Remark if r.grade.course == None).count() == 0  # noqa: E711
