"""Relationship options checked when entities are mapped, and ``fk_name`` naming the foreign key.

docs/attributes.md lists the options; each misuse raises at ``generate_mapping`` with a message
naming both attributes of the relationship.
"""

from __future__ import annotations

from typing import Any

import pytest

from nextorm import (
    Database,
    ERDiagramError,
    MappingError,
    Optional,
    PrimaryKey,
    Required,
    Set,
    TransactionIntegrityError,
    db_session,
)


def test_cascade_delete_on_both_sides_is_refused(db: Database) -> None:
    """``cascade_delete=True`` on both sides of one relationship names the two attributes."""

    class Person(db.Entity):
        name = Required(str)
        group = Set("Group", cascade_delete=True)

    class Group(db.Entity):
        persons = Required(Person, cascade_delete=True)

    with pytest.raises(TypeError) as info:
        db.generate_mapping(create_tables=True)
    assert str(info.value) == (
        "'cascade_delete' option cannot be set for both sides of relationship "
        "(Person.group and Group.persons) simultaneously"
    )


def test_cascade_delete_towards_a_collection_whose_reverse_is_a_collection_is_refused(db: Database) -> None:
    """In a many-to-many relationship a member may belong to other owners: no cascade_delete."""

    class Person(db.Entity):
        name = Required(str)
        groups = Set("Group")

    class Group(db.Entity):
        persons = Set(Person, cascade_delete=True)

    with pytest.raises(TypeError) as info:
        db.generate_mapping(create_tables=True)
    assert str(info.value) == (
        "'cascade_delete' option cannot be set for attribute Group.persons, "
        "because reverse attribute Person.groups is collection"
    )


def test_fk_name_on_the_collection_side_points_to_the_reference(db: Database) -> None:
    """The foreign key is the reference's column: ``fk_name`` on its Set names the attribute to use."""

    class Group(db.Entity):
        persons = Set("Person", fk_name="fk_person_group")

    class Person(db.Entity):
        group = Required(Group)

    with pytest.raises(TypeError, match=r"^You should specify fk_name in Person\.group instead of Group\.persons"):
        db.generate_mapping(create_tables=True)


def test_unknown_entity_and_reverse_keep_the_attribute_in_a_note(db: Database) -> None:
    """The message names the missing entity or reverse; a note names the attribute declaring it."""

    class Person(db.Entity):
        group = Required("Nowhere")

    with pytest.raises(ERDiagramError) as info:
        db.generate_mapping(create_tables=True)
    assert str(info.value) == "Entity definition Nowhere was not found"
    assert info.value.__notes__ == ["used by Person.group"]


def test_unknown_reverse_names_it(db: Database) -> None:
    class Group(db.Entity):
        persons = Set("Person", reverse="team")

    class Person(db.Entity):
        group = Required(Group)

    with pytest.raises(ERDiagramError) as info:
        db.generate_mapping(create_tables=True)
    assert str(info.value) == "Reverse attribute Person.team not found"
    assert info.value.__notes__ == ["for Group.persons"]


@pytest.fixture
def school(db: Database) -> Database:
    class Group(db.Entity):
        number = Required(int)
        students = Set("Student")
        subjects = Set("Subject")

    class Student(db.Entity):
        name = Required(str)
        group = Required(Group)

    class Subject(db.Entity):
        name = Required(str)
        groups = Set(Group)

    db.generate_mapping(create_tables=True)
    return db


def test_collection_create_refuses_the_reverse_attribute(school: Database) -> None:
    """``g.students.create()`` sets the reverse itself: passing it too is a TypeError naming it."""
    Group = school.Group
    with db_session:
        g = Group(number=1)
        with pytest.raises(TypeError) as info:
            g.students.create(name="Ann", group=g)
        assert str(info.value) == "When using Group.students.create(), 'group' attribute should not be passed explicitly"
        with pytest.raises(TypeError, match=r"Group\.subjects\.create\(\), 'groups' attribute should not"):
            g.subjects.create(name="Math", groups=[g])
        ann = g.students.create(name="Ann")
        math = g.subjects.create(name="Math")
        assert ann.group is g and set(g.subjects) == {math}


# -- fk_name ----------------------------------------------------------------------------------------


def _constraint_names(db: Database, db_kind: str, table: str) -> set[str]:
    if db_kind == "sqlite":
        (sql,) = db.select(f"sql from sqlite_master where type = 'table' and name = '{table}'")
        import re

        return set(re.findall(r'CONSTRAINT "([^"]+)" FOREIGN KEY', sql))
    return set(
        db.select(
            "constraint_name from information_schema.table_constraints "
            "where table_name = $table and constraint_type = 'FOREIGN KEY' and table_schema = current_schema()"
        )
    )


def _declare(db: Database) -> None:
    class Group(db.Entity):
        _table_ = "grp"
        number = Required(int)
        students = Set("Student")
        mentored = Set("Student", reverse="mentor_group")

    class Student(db.Entity):
        _table_ = "student"
        name = Required(str)
        group = Required(Group, fk_name="fk_student_in_group")
        mentor_group = Optional(Group, reverse="mentored")


def test_fk_name_names_the_foreign_key_constraint(db: Database, another_db: Database, db_kind: str) -> None:
    """``Required(Group, fk_name=...)`` names the reference's foreign key in the database; others keep theirs."""
    _declare(db)
    db.generate_mapping(create_tables=True)
    foreign_keys = {fk.columns[0].name: fk.name for fk in db.schema.tables["student"].foreign_keys}
    assert foreign_keys == {"group": "fk_student_in_group", "mentor_group": "fk_student__mentor_group"}
    assert 'CONSTRAINT "fk_student_in_group"' in db.schema.generate_create_script()
    with db_session:
        names = _constraint_names(db, db_kind, "student")
    if db_kind == "sqlite":
        # SQLite keeps a name only where the declaration gives one
        assert names == {"fk_student_in_group"}
    else:
        assert names == {"fk_student_in_group", "fk_student__mentor_group"}
    # the named constraint still checks the reference
    with pytest.raises(TransactionIntegrityError), db_session:
        db.execute("""insert into student (name, "group") values ('Ann', 999)""")
    # mapping the same entities again over the existing tables keeps the constraints
    _declare(another_db)
    another_db.generate_mapping(create_tables=True)
    with db_session:
        assert _constraint_names(another_db, db_kind, "student") == names


def test_a_collection_is_no_search_criterion(school: Database) -> None:
    """``Group.get(students=[])`` names the collection; a note says how to query its members."""
    Group = school.Group
    with db_session, pytest.raises(TypeError) as info:
        Group.get(students=[])
    assert str(info.value) == "Collection attribute Group.students cannot be specified as search criteria"
    assert "in x.students" in "\n".join(info.value.__notes__)


def test_wrong_number_of_columns_names_the_attribute_giving_them(db: Database) -> None:
    """Columns given for a composite key in the wrong number name the attribute whose option gives them."""

    class Entity1(db.Entity):
        a = Required(int)
        b = Required(str)
        PrimaryKey(a, b)
        attr1 = Set("Entity2", column="z")

    class Entity2(db.Entity):
        id = PrimaryKey(int)
        attr2 = Set(Entity1, columns=["x"])

    with pytest.raises(MappingError) as info:
        db.generate_mapping(create_tables=True)
    assert str(info.value) == "Invalid number of columns for Entity2.attr2"
    assert "1 join table column(s) given for the primary key of Entity1, which has 2" in info.value.__notes__[0]


def test_wrong_number_of_reference_columns(db: Database) -> None:
    class Entity1(db.Entity):
        a = Required(int)
        b = Required(str)
        PrimaryKey(a, b)
        attr1 = Set("Entity2")

    class Entity2(db.Entity):
        attr2 = Required(Entity1, columns=["x"])

    with pytest.raises(MappingError) as info:
        db.generate_mapping(create_tables=True)
    assert str(info.value) == "Invalid number of columns specified for Entity2.attr2"
    assert info.value.__notes__ == ["Entity2.attr2 names 1 column(s), but the primary key of Entity1 has 2"]


def test_a_join_table_named_like_an_entity_table(db: Database) -> None:
    class Entity1(db.Entity):
        _table_ = "Table1"
        attr1 = Set("Entity2", table="Table1")

    class Entity2(db.Entity):
        attr2 = Set(Entity1)

    with pytest.raises(ERDiagramError) as info:
        db.generate_mapping(create_tables=True)
    assert str(info.value) == 'Table name "Table1" is already in use'
    assert "Join table 'Table1' of Entity1.attr1" in info.value.__notes__[0]
