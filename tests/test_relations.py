"""Relationships (issue #5): declarations and their DDL, both sides kept in step in memory,
lazy loading through the identity map, prefetch, many-to-many change tracking, deletion
and cascades, flush ordering, collections after the session, raw foreign-key values.

Entities are declared per test on the ``db`` fixture. Persistence is checked twice: in a
fresh session, and with ``other_connection`` reading the committed rows like another client.
"""

from __future__ import annotations

import re
import sqlite3
from types import SimpleNamespace
from typing import Any

import pytest

import nextorm
from nextorm import (
    AttributeTypeError,
    Database,
    DatabaseSessionIsOver,
    ERDiagramError,
    Optional,
    PrimaryKey,
    Required,
    Set,
    TransactionError,
    ValidationError,
    db_session,
    flush,
)
from nextorm.exceptions import ConstraintError, UnresolvableCyclicDependency

# -- helpers -----------------------------------------------------------------------------------


def selects(sql_log: Any, table: str | None = None) -> list[str]:
    """The logged SELECT statements (those reading ``table`` when given)."""
    found = [s for s in sql_log.statements if s.startswith("SELECT")]
    if table is not None:
        found = [s for s in found if f'from "{table.lower()}"' in s.lower()]
    return found


def writes(sql_log: Any) -> list[str]:
    """The logged INSERT/UPDATE/DELETE statements as ``[EXECUTEMANY (n) ]VERB table`` (table in lower case)."""
    pattern = re.compile(r'^(EXECUTEMANY \(\d+\) )?(INSERT INTO|UPDATE|DELETE FROM) "?(\w+)"?')
    result = []
    for statement in sql_log.statements:
        match = pattern.match(statement)
        if match:
            result.append(f"{match.group(1) or ''}{match.group(2).split()[0]} {match.group(3).lower()}")
    return result


def rows(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Committed rows as another client sees them (``?`` placeholders)."""
    return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def is_sqlite(conn: Any) -> bool:
    """Whether the other client is a sqlite3 connection (else PostgreSQL)."""
    return isinstance(conn, sqlite3.Connection)


def default_name(db: Database, name: str) -> str:
    """The table or column name nextorm derives from ``name``: as is on SQLite, lower-cased on PostgreSQL."""
    return name.lower() if db.provider_name == "postgres" else name


def tables(conn: Any) -> set[str]:
    """The names of the tables in the database."""
    if is_sqlite(conn):
        return {r[0] for r in rows(conn, "SELECT name FROM sqlite_master WHERE type = 'table'")} - {
            "sqlite_sequence"
        }
    return {
        r[0]
        for r in rows(
            conn, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    }


def column_info(conn: Any, table: str) -> dict[str, tuple[Any, ...]]:
    """Columns by name, as ``PRAGMA table_info`` rows: (cid, name, type, notnull, default, pk position or 0)."""
    if is_sqlite(conn):
        return {r[1]: r for r in rows(conn, f'PRAGMA table_info("{table}")')}
    sql = """
        SELECT a.attnum - 1, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull::int,
               pg_get_expr(d.adbin, d.adrelid),
               coalesce(array_position((SELECT p.conkey FROM pg_constraint p
                                        WHERE p.conrelid = c.oid AND p.contype = 'p'), a.attnum), 0)
        FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
        WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ?
        ORDER BY a.attnum
    """
    return {r[1]: r for r in rows(conn, sql, (table,))}


def indexed_columns(conn: Any, table: str) -> dict[str, tuple[list[str], bool]]:
    """The indexes of ``table`` (PRAGMA index_list / pg_index): name -> (columns, unique)."""
    if is_sqlite(conn):
        result = {}
        for _, name, unique, *_ in rows(conn, f'PRAGMA index_list("{table}")'):
            columns = [r[2] for r in rows(conn, f'PRAGMA index_info("{name}")')]
            result[name] = (columns, bool(unique))
        return result
    sql = """
        SELECT ic.relname, i.indisunique,
               array(SELECT a.attname FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.n)
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class tc ON tc.oid = i.indrelid
        WHERE tc.relnamespace = current_schema()::regnamespace AND tc.relname = ?
    """
    return {name: (list(columns), bool(unique)) for name, unique, columns in rows(conn, sql, (table,))}


def foreign_keys(conn: Any, table: str) -> set[tuple[str, str, str]]:
    """(column, referenced table, referenced column) of every foreign key of ``table``."""
    if is_sqlite(conn):
        return {(r[3], r[2], r[4]) for r in rows(conn, f'PRAGMA foreign_key_list("{table}")')}
    sql = """
        SELECT a.attname, rt.relname, ra.attname
        FROM pg_constraint con
        JOIN pg_class t ON t.oid = con.conrelid
        JOIN pg_class rt ON rt.oid = con.confrelid
        CROSS JOIN LATERAL unnest(con.conkey, con.confkey) AS k(col, refcol)
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.col
        JOIN pg_attribute ra ON ra.attrelid = con.confrelid AND ra.attnum = k.refcol
        WHERE con.contype = 'f' AND t.relnamespace = current_schema()::regnamespace AND t.relname = ?
    """
    return {tuple(r) for r in rows(conn, sql, (table,))}  # type: ignore[misc]


def on_delete_actions(conn: Any, table: str) -> dict[str, str]:
    """The ``ON DELETE`` action of each foreign key of ``table``, by its (first) column."""
    if is_sqlite(conn):
        return {r[3]: r[6] for r in rows(conn, f'PRAGMA foreign_key_list("{table}")')}
    sql = """
        SELECT a.attname, con.confdeltype
        FROM pg_constraint con
        JOIN pg_class t ON t.oid = con.conrelid
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
        WHERE con.contype = 'f' AND t.relnamespace = current_schema()::regnamespace AND t.relname = ?
    """
    words = {"a": "NO ACTION", "c": "CASCADE", "n": "SET NULL"}
    return {column: words[action] for column, action in rows(conn, sql, (table,))}


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def school(db: Database) -> SimpleNamespace:
    """Group -< Student (Required group) and Student >-< Course through a generated join table."""

    class Group(db.Entity):
        name = Required(str)
        students = Set("Student")

    class Student(db.Entity):
        name = Required(str)
        courses = Set("Course")
        group = Required(Group)

    class Course(db.Entity):
        title = Required(str)
        students = Set(Student)

    db.generate_mapping(create_tables=True)
    return SimpleNamespace(Group=Group, Student=Student, Course=Course)


@pytest.fixture
def school_data(school: SimpleNamespace) -> SimpleNamespace:
    """Groups 1 (students 1, 2) and 2 (student 3, no courses); courses 1 (students 1, 2) and 2 (student 1)."""
    with db_session:
        g1 = school.Group(name="g1")
        g2 = school.Group(name="g2")
        s1 = school.Student(name="s1", group=g1)
        s2 = school.Student(name="s2", group=g1)
        school.Student(name="s3", group=g2)
        c1 = school.Course(title="c1")
        c2 = school.Course(title="c2")
        c1.students.add([s1, s2])
        c2.students.add(s1)
    return school


@pytest.fixture
def blog(db: Database) -> SimpleNamespace:
    """User -< Post through an Optional author (a nullable foreign key)."""

    class User(db.Entity):
        name = Required(str)
        posts = Set("Post")

    class Post(db.Entity):
        title = Required(str)
        author = Optional(User)

    db.generate_mapping(create_tables=True)
    return SimpleNamespace(User=User, Post=Post)


@pytest.fixture
def blog_data(blog: SimpleNamespace) -> SimpleNamespace:
    """Users 1 (posts 1, 2), 2 (post 3) and 3 (no posts); post 4 has no author."""
    with db_session:
        ann = blog.User(name="ann")
        bob = blog.User(name="bob")
        blog.User(name="cid")
        blog.Post(title="p1", author=ann)
        blog.Post(title="p2", author=ann)
        blog.Post(title="p3", author=bob)
        blog.Post(title="p4")
    return blog


@pytest.fixture
def accounts(db: Database) -> SimpleNamespace:
    """User - Profile one-to-one: Profile.user is Required, User.profile Optional."""

    class User(db.Entity):
        name = Required(str)
        profile = Optional("Profile")

    class Profile(db.Entity):
        bio = Optional(str)
        user = Required(User)

    db.generate_mapping(create_tables=True)
    return SimpleNamespace(User=User, Profile=Profile)


@pytest.fixture
def couples(db: Database) -> SimpleNamespace:
    """Husband - Wife one-to-one with both sides Optional."""

    class Husband(db.Entity):
        name = Required(str)
        wife = Optional("Wife")

    class Wife(db.Entity):
        name = Required(str)
        husband = Optional(Husband)

    db.generate_mapping(create_tables=True)
    return SimpleNamespace(Husband=Husband, Wife=Wife)


@pytest.fixture
def people(db: Database) -> SimpleNamespace:
    """Self-references: Person.mentor -< Person.mentees, and followers >-< following."""

    class Person(db.Entity):
        name = Required(str)
        mentees = Set("Person", reverse="mentor")
        followers = Set("Person", reverse="following")
        following = Set("Person", reverse="followers")
        mentor = Optional("Person", reverse="mentees")

    db.generate_mapping(create_tables=True)
    return SimpleNamespace(Person=Person)


# -- public names ----------------------------------------------------------------------------------


def test_relation_errors_are_public_names() -> None:
    """ConstraintError and UnresolvableCyclicDependency can be imported from ``nextorm`` (Pony exports both)."""
    assert getattr(nextorm, "ConstraintError", None) is ConstraintError
    assert getattr(nextorm, "UnresolvableCyclicDependency", None) is UnresolvableCyclicDependency
    assert {"ConstraintError", "UnresolvableCyclicDependency"} <= set(nextorm.__all__)


# -- declarations and DDL -----------------------------------------------------------------------


def test_one_to_many_foreign_key_column_references_target(
    db: Database, blog: SimpleNamespace, other_connection: Any
) -> None:
    """A reference becomes a column on the child's table with a FOREIGN KEY to the parent's pk; the Set adds no column."""
    post, user = default_name(db, "Post"), default_name(db, "User")
    assert (blog.Post._table_, blog.User._table_) == (post, user)
    assert set(column_info(other_connection, post)) == {"id", "title", "author"}
    assert set(column_info(other_connection, user)) == {"id", "name"}
    assert foreign_keys(other_connection, post) == {("author", user, "id")}


def test_one_to_many_foreign_key_column_is_indexed(blog: SimpleNamespace, other_connection: Any) -> None:
    """The foreign-key column gets an index of its own (PRAGMA index_list / pg_index)."""
    indexes = indexed_columns(other_connection, blog.Post._table_)
    assert ["author"] in [columns for columns, _ in indexes.values()]


def test_required_reference_column_is_not_null(school: SimpleNamespace, other_connection: Any) -> None:
    """Required(Group) makes a NOT NULL column; Optional(User) a nullable one."""
    assert column_info(other_connection, school.Student._table_)["group"][3] == 1


def test_optional_reference_column_is_nullable(blog: SimpleNamespace, other_connection: Any) -> None:
    """Optional(User) makes a nullable foreign-key column."""
    assert column_info(other_connection, blog.Post._table_)["author"][3] == 0


def test_many_to_many_generated_join_table(
    db: Database, school: SimpleNamespace, other_connection: Any
) -> None:
    """Set against Set creates one join table named after both entities, keyed by both columns, with two FKs."""
    group, student, course, join = (
        default_name(db, n) for n in ("Group", "Student", "Course", "Course_Student")
    )
    assert tables(other_connection) == {group, student, course, join}
    info = column_info(other_connection, join)
    assert set(info) == {"course", "student"}
    assert info["course"][5] > 0 and info["student"][5] > 0
    assert foreign_keys(other_connection, join) == {
        ("course", course, "id"),
        ("student", student, "id"),
    }
    assert "courses" not in column_info(other_connection, student)
    assert "students" not in column_info(other_connection, course)


def test_many_to_many_join_table_indexes_second_column(
    db: Database, school: SimpleNamespace, other_connection: Any
) -> None:
    """The join table's second key column is indexed, so lookups from either side use an index."""
    join = default_name(db, "Course_Student")
    indexed = [columns for columns, _ in indexed_columns(other_connection, join).values()]
    assert ["course", "student"] in indexed
    assert ["student"] in indexed


def test_many_to_many_named_join_table(db: Database, other_connection: Any) -> None:
    """``Set(..., table='enrollment')`` names the join table; no generated name is created."""

    class Student(db.Entity):
        name = Required(str)
        courses = Set("Course", table="enrollment")

    class Course(db.Entity):
        title = Required(str)
        students = Set(Student)

    db.generate_mapping(create_tables=True)
    with db_session:
        Student(name="s", courses=[Course(title="c")])
    assert "enrollment" in tables(other_connection)
    assert {name.lower() for name in tables(other_connection)} == {"student", "course", "enrollment"}
    assert rows(other_connection, 'SELECT "course", "student" FROM "enrollment"') == [(1, 1)]


def test_one_to_one_required_side_holds_unique_column(
    accounts: SimpleNamespace, other_connection: Any
) -> None:
    """Optional against Required: the Required side holds a UNIQUE foreign key, the Optional side no column."""
    user, profile = accounts.User._table_, accounts.Profile._table_
    assert "profile" not in column_info(other_connection, user)
    assert foreign_keys(other_connection, profile) == {("user", user, "id")}
    assert (["user"], True) in indexed_columns(other_connection, profile).values()


def test_one_to_one_optional_pair_has_exactly_one_unique_column(
    couples: SimpleNamespace, other_connection: Any
) -> None:
    """Optional against Optional: exactly one side holds the (unique, nullable) key column."""
    husband, wife = couples.Husband._table_, couples.Wife._table_
    husband_cols = column_info(other_connection, husband)
    wife_cols = column_info(other_connection, wife)
    assert ("wife" in husband_cols) != ("husband" in wife_cols)
    table, column = (husband, "wife") if "wife" in husband_cols else (wife, "husband")
    assert column_info(other_connection, table)[column][3] == 0
    assert ([column], True) in indexed_columns(other_connection, table).values()


def test_existing_tables_with_relations_pass_check_tables(db: Database, another_db: Database) -> None:
    """Mapping onto tables made earlier checks only real columns: no column for a Set or a one-to-one's key-less side."""

    def declare(database: Database) -> None:
        """Declare the same three entities on ``database``."""

        class User(database.Entity):
            name = Required(str)
            posts = Set("Post")
            profile = Optional("Profile")

        class Post(database.Entity):
            title = Required(str)
            author = Optional(User)

        class Profile(database.Entity):
            user = Required(User)

    declare(db)
    db.generate_mapping(create_tables=True)
    declare(another_db)
    another_db.generate_mapping(check_tables=True)
    with db_session:
        assert another_db.entities["User"].select().count() == 0


def test_one_to_one_both_required_is_a_mapping_error(db: Database) -> None:
    """Required against Required cannot be stored (neither row could be inserted first): ERDiagramError."""

    class A(db.Entity):
        b = Required("B")

    class B(db.Entity):
        a = Required(A)

    with pytest.raises(
        ERDiagramError, match=r"At least one attribute of one-to-one relationship .* must be optional"
    ):
        db.generate_mapping(create_tables=True)


def test_self_reference_one_to_many(people: SimpleNamespace, other_connection: Any) -> None:
    """A Person's mentor is a Person: the FK points at its own table, and both sides work."""
    Person = people.Person
    assert foreign_keys(other_connection, Person._table_) == {("mentor", Person._table_, "id")}
    with db_session:
        boss = Person(name="boss")
        a = Person(name="a", mentor=boss)
        b = Person(name="b", mentor=boss)
        assert set(boss.mentees) == {a, b}
        assert a.mentor is boss
    with db_session:
        boss = Person.get(name="boss")
        assert {p.name for p in boss.mentees} == {"a", "b"}
        assert boss.mentor is None
        assert Person.get(name="a").mentor is boss


def test_self_reference_without_reverse_option(db: Database) -> None:
    """A self-reference with a single candidate needs no ``reverse=``."""

    class Node(db.Entity):
        name = Required(str)
        children = Set("Node")
        parent = Optional("Node")

    db.generate_mapping(create_tables=True)
    with db_session:
        root = Node(name="root")
        Node(name="leaf", parent=root)
    with db_session:
        root = Node.get(name="root")
        assert [n.name for n in root.children] == ["leaf"]
        assert Node.get(name="leaf").parent is root


def test_self_reference_many_to_many_both_directions(people: SimpleNamespace, other_connection: Any) -> None:
    """followers/following: adding to one side shows on the other, in memory and after a reload."""
    Person = people.Person
    with db_session:
        a, b, c = Person(name="a"), Person(name="b"), Person(name="c")
        a.following.add([b, c])
        assert a in b.followers and a in c.followers
        assert set(a.followers) == set()
    with db_session:
        a, b, c = (Person.get(name=n) for n in "abc")
        assert set(a.following) == {b, c}
        assert set(b.followers) == {a}
        assert set(c.followers) == {a}
        assert set(b.following) == set()
    (join,) = tables(other_connection) - {Person._table_}
    assert len(rows(other_connection, f'SELECT * FROM "{join}"')) == 2


def test_symmetric_self_reference_many_to_many(db: Database, other_connection: Any) -> None:
    """A Set that is its own reverse (``friends``) is symmetric: b is a's friend and a is b's, after reload too.

    Its join table is named after the entity and the attribute (``Person_friends``) and holds
    both directions of each link.
    """

    class Person(db.Entity):
        name = Required(str)
        friends = Set("Person", reverse="friends")

    db.generate_mapping(create_tables=True)
    with db_session:
        a, b = Person(name="a"), Person(name="b")
        a.friends.add(b)
        assert a in b.friends
    with db_session:
        a, b = Person.get(name="a"), Person.get(name="b")
        assert set(a.friends) == {b}
        assert set(b.friends) == {a}
    join = default_name(db, "Person_friends")
    assert tables(other_connection) == {Person._table_, join}
    assert sorted(rows(other_connection, f'SELECT person, person_2 FROM "{join}"')) == [(1, 2), (2, 1)]


def test_explicit_reverse_resolves_two_relations_between_same_entities(
    db: Database, other_connection: Any
) -> None:
    """Two relations between User and Post are told apart by ``reverse=``; a column may follow a reference."""

    class User(db.Entity):
        name = Required(str)
        posts = Set("Post", reverse="author")
        edited = Set("Post", reverse="editor")

    class Post(db.Entity):
        author = Required(User)
        editor = Optional(User)
        title = Required(str)

    db.generate_mapping(create_tables=True)
    assert User.posts.reverse is Post.author
    assert User.edited.reverse is Post.editor
    with db_session:
        ann, bob = User(name="ann"), User(name="bob")
        p = Post(title="t", author=ann, editor=bob)
        assert set(ann.posts) == {p} and set(ann.edited) == set()
        assert set(bob.edited) == {p} and set(bob.posts) == set()
    assert rows(other_connection, 'SELECT "author", "editor", "title" FROM "post"') == [(1, 2, "t")]


def test_columns_declared_after_references_are_created(db: Database, other_connection: Any) -> None:
    """An entity with two references followed by a plain column gets a valid table (constraints after columns)."""

    class User(db.Entity):
        name = Required(str)
        reviews = Set("Review", reverse="reviewer")
        received = Set("Review", reverse="subject")

    class Review(db.Entity):
        reviewer = Required(User)
        subject = Optional(User)
        text = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        a, b = User(name="a"), User(name="b")
        Review(reviewer=a, subject=b, text="fine")
    assert rows(other_connection, 'SELECT "reviewer", "subject", "text" FROM "review"') == [(1, 2, "fine")]


def test_cascade_delete_option_is_declared_on_the_set(db: Database) -> None:
    """``Set(..., cascade_delete=True)`` is accepted and kept on the attribute."""

    class User(db.Entity):
        name = Required(str)
        posts = Set("Post", cascade_delete=True)

    class Post(db.Entity):
        title = Required(str)
        author = Optional(User)

    db.generate_mapping(create_tables=True)
    assert User.posts.cascade_delete is True


def test_forward_reference_by_class_name_string(db: Database) -> None:
    """``Required('User')`` declared before User exists resolves to the User entity at mapping time."""

    class Post(db.Entity):
        title = Required(str)
        author = Required("User")

    class User(db.Entity):
        name = Required(str)
        posts = Set(Post)

    db.generate_mapping(create_tables=True)
    assert Post.author.py_type is User
    assert User.posts.py_type is Post
    with db_session:
        u = User(name="u")
        Post(title="t", author=u)
    with db_session:
        assert Post.get(title="t").author.name == "u"


def test_missing_reverse_is_a_mapping_error(db: Database) -> None:
    """A reference whose target has no matching attribute: ERDiagramError naming the attribute."""

    class User(db.Entity):
        name = Required(str)

    class Post(db.Entity):
        author = Required(User)

    with pytest.raises(ERDiagramError, match=re.escape("Reverse attribute for Post.author not found")):
        db.generate_mapping(create_tables=True)


def test_ambiguous_reverse_is_a_mapping_error(db: Database) -> None:
    """Two candidate reverses and no ``reverse=``: ERDiagramError telling to use ``reverse``."""

    class User(db.Entity):
        name = Required(str)
        posts = Set("Post")
        edited = Set("Post")

    class Post(db.Entity):
        author = Required(User)
        editor = Optional(User)

    with pytest.raises(
        ERDiagramError, match=r"Ambiguous reverse attribute for \w+\.\w+\. Use the 'reverse' parameter"
    ):
        db.generate_mapping(create_tables=True)


def test_explicit_reverse_that_does_not_exist_is_a_mapping_error(db: Database) -> None:
    """``reverse='nope'`` naming no attribute of the target: ERDiagramError naming User.nope."""

    class User(db.Entity):
        name = Required(str)

    class Post(db.Entity):
        author = Required(User, reverse="nope")

    with pytest.raises(ERDiagramError, match=re.escape("Reverse attribute User.nope not found")):
        db.generate_mapping(create_tables=True)


def test_reverse_of_another_type_is_a_mapping_error(db: Database) -> None:
    """``reverse=`` pointing at an attribute that refers to a different entity: ERDiagramError naming both."""

    class User(db.Entity):
        name = Required(str)
        tags = Set("Tag")

    class Tag(db.Entity):
        users = Set(User)

    class Post(db.Entity):
        author = Required(User, reverse="tags")

    with pytest.raises(
        ERDiagramError,
        match=r"Inconsistent reverse attributes (Post\.author and User\.tags|User\.tags and Post\.author)",
    ):
        db.generate_mapping(create_tables=True)


def test_unknown_entity_name_is_a_mapping_error(db: Database) -> None:
    """A forward reference to an entity that is never declared: ERDiagramError naming it."""

    class Post(db.Entity):
        author = Required("Nobody")

    with pytest.raises(ERDiagramError, match="Entity definition Nobody was not found"):
        db.generate_mapping(create_tables=True)


def test_reverse_option_must_be_a_string(db: Database) -> None:
    """``reverse=`` given something other than a name or an attribute: TypeError, as Pony raises."""

    class User(db.Entity):
        name = Required(str)

    with pytest.raises(TypeError, match="Value of 'reverse' option must be name of reverse attribute"):
        Required(User, reverse=42)


def test_set_rejects_unknown_option(db: Database) -> None:
    """``Set(..., colour=1)`` is a TypeError naming the attribute and the option."""
    with pytest.raises(TypeError, match=r"Attribute User\.posts has unknown option 'colour'"):

        class User(db.Entity):
            posts = Set("Post", colour=1)


def test_reference_to_entity_of_another_database_is_a_mapping_error(db: Database) -> None:
    """A relation to an entity of another Database: ERDiagramError naming both."""
    other = Database("sqlite", ":memory:")

    class User(other.Entity):
        name = Required(str)

    class Post(db.Entity):
        author = Required(User)

    with pytest.raises(ERDiagramError, match=r"Entities Post and User belongs to different databases") as info:
        db.generate_mapping(create_tables=True)
    assert info.value.__notes__ == ["used by Post.author"]  # the attribute, in a note


# -- both sides in step in memory ------------------------------------------------------------------


def test_assigning_reference_updates_loaded_collections(blog_data: SimpleNamespace) -> None:
    """``post.author = u`` moves the post from the old author's loaded posts to the new one's."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann, bob = User[1], User[2]
        p1 = Post[1]
        assert p1 in ann.posts and p1 not in bob.posts
        p1.author = bob
        assert p1 not in ann.posts
        assert p1 in bob.posts
        assert len(ann.posts) == 1 and len(bob.posts) == 2


def test_assigning_reference_is_seen_by_collection_loaded_later(blog_data: SimpleNamespace) -> None:
    """A collection loaded after an unsaved reassignment includes the moved child (autoflush first)."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        Post[3].author = User[1]
        assert {p.title for p in User[1].posts} == {"p1", "p2", "p3"}
        assert list(User[2].posts) == []


def test_new_child_appears_in_loaded_collection(blog_data: SimpleNamespace) -> None:
    """Creating ``Post(author=u)`` adds it to ``u.posts`` already loaded, before any flush."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        assert len(ann.posts) == 2
        p = Post(title="new", author=ann)
        assert p in ann.posts
        assert len(ann.posts) == 3


def test_collection_of_new_object_is_empty_and_loaded(blog: SimpleNamespace, sql_log: Any) -> None:
    """A new object's collection is known empty: no query is needed to read it."""
    with db_session:
        u = blog.User(name="u")
        sql_log.clear()
        assert len(u.posts) == 0
        assert list(u.posts) == []
        assert u.posts.is_empty()
        assert selects(sql_log) == []


def test_collection_add_sets_reference(blog_data: SimpleNamespace, other_connection: Any) -> None:
    """``u.posts.add(p)`` sets ``p.author`` and removes p from its old author's posts; it persists."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        bob = User[2]
        ann_posts = User[1].posts
        ann_posts.load()
        p1 = Post[1]
        bob.posts.add(p1)
        assert p1.author is bob
        assert p1 in bob.posts
        assert p1 not in ann_posts
    assert rows(other_connection, 'SELECT "author" FROM "post" WHERE "id" = 1') == [(2,)]


def test_collection_add_several(blog_data: SimpleNamespace) -> None:
    """``add`` takes an iterable of objects too."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        cid = User[3]
        cid.posts.add([Post[3], Post[4]])
        assert Post[3].author is cid and Post[4].author is cid
    with db_session:
        assert {p.id for p in User[3].posts} == {3, 4}
        assert list(User[2].posts) == []


def test_collection_remove_clears_optional_reference(
    blog_data: SimpleNamespace, other_connection: Any
) -> None:
    """``u.posts.remove(p)`` sets ``p.author`` to None and persists NULL."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann, p1 = User[1], Post[1]
        ann.posts.remove(p1)
        assert p1.author is None
        assert p1 not in ann.posts
        assert len(ann.posts) == 1
    assert rows(other_connection, 'SELECT "author" FROM "post" WHERE "id" = 1') == [(None,)]


def test_collection_remove_of_non_member_is_a_no_op(blog_data: SimpleNamespace) -> None:
    """Removing an object that is not in the collection changes nothing."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann, p3 = User[1], Post[3]
        ann.posts.remove(p3)
        assert p3.author is User[2]
        assert len(ann.posts) == 2


def test_collection_remove_deletes_member_when_reverse_is_required(
    school_data: SimpleNamespace, other_connection: Any
) -> None:
    """Removing a student from the group it must belong to deletes the student, as Pony does."""
    Group, Student = school_data.Group, school_data.Student
    with db_session:
        g, s = Group[1], Student[1]
        g.students.remove(s)
        assert s not in g.students
        assert [m.name for m in g.students] == ["s2"]
        g.students.clear()
        assert not g.students
    assert rows(other_connection, 'SELECT "name" FROM "student"') == [("s3",)]


def test_collection_remove_refused_when_reverse_is_required_and_cascade_is_off(db: Database) -> None:
    """With ``cascade_delete=False``, removing a member whose reverse is Required is refused; nothing changes."""

    class Group(db.Entity):
        students = Set("Student", cascade_delete=False)

    class Student(db.Entity):
        group = Required(Group)

    db.generate_mapping(create_tables=True)
    with db_session:
        s = Student(group=Group())
    with db_session:
        g, s = Group[1], Student[1]
        with pytest.raises(ConstraintError, match="Student.group attribute is required"):
            g.students.remove(s)
        assert s.group is g
        assert s in g.students


def test_collection_clear(blog_data: SimpleNamespace, other_connection: Any) -> None:
    """``clear()`` unlinks every member: references become None, the collection empty, NULLs persisted."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        ann.posts.clear()
        assert len(ann.posts) == 0
        assert ann.posts.is_empty()
        assert Post[1].author is None and Post[2].author is None
    assert rows(other_connection, 'SELECT "id" FROM "post" WHERE "author" IS NULL ORDER BY "id"') == [
        (1,),
        (2,),
        (4,),
    ]


def test_collection_assignment_replaces_members(blog_data: SimpleNamespace, other_connection: Any) -> None:
    """``u.posts = [...]`` unlinks members not listed and links the listed ones."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        ann.posts = [Post[2], Post[3], Post[4]]
        assert set(ann.posts) == {Post[2], Post[3], Post[4]}
        assert Post[1].author is None
        assert Post[3].author is ann
        assert list(User[2].posts) == []
    assert rows(other_connection, 'SELECT "id", "author" FROM "post" ORDER BY "id"') == [
        (1, None),
        (2, 1),
        (3, 1),
        (4, 1),
    ]


def test_collection_assignment_through_set(blog_data: SimpleNamespace) -> None:
    """``obj.set(posts=[...])`` assigns a collection like attribute assignment does."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        User[3].set(posts=[Post[4]])
        assert Post[4].author is User[3]
    with db_session:
        assert [p.id for p in User[3].posts] == [4]


def test_collection_len_contains_iteration(blog_data: SimpleNamespace) -> None:
    """``len``, ``in``, iteration and truth of a collection read its members."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann, cid = User[1], User[3]
        assert len(ann.posts) == 2
        assert Post[1] in ann.posts
        assert Post[3] not in ann.posts
        assert sorted(p.title for p in ann.posts) == ["p1", "p2"]
        assert bool(ann.posts) is True
        assert bool(cid.posts) is False
        assert len(cid.posts) == 0


def test_collection_compares_equal_to_a_set_of_members(blog_data: SimpleNamespace) -> None:
    """A collection equals a Python set holding its members."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        assert User[1].posts == {Post[1], Post[2]}
        assert User[1].posts != {Post[1]}


def test_is_empty_and_count_query_without_loading(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """On an unloaded collection ``count()``/``is_empty()`` run one aggregate query each and load nothing."""
    User = blog_data.User
    with db_session:
        ann, cid = User[1], User[3]
        sql_log.clear()
        assert ann.posts.count() == 2
        assert cid.posts.count() == 0
        assert ann.posts.is_empty() is False
        assert cid.posts.is_empty() is True
        assert len(selects(sql_log)) == 4
        assert all(s.startswith(("SELECT COUNT(*)", "SELECT 1 ")) for s in selects(sql_log))
        sql_log.clear()
        assert len(ann.posts) == 2
        assert len(selects(sql_log, "Post")) == 1


def test_count_of_loaded_collection_needs_no_query(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """Once loaded, ``count()``, ``is_empty()``, ``len`` and ``in`` run no SQL."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann, p1 = User[1], Post[1]
        ann.posts.load()
        sql_log.clear()
        assert ann.posts.count() == 2
        assert not ann.posts.is_empty()
        assert len(ann.posts) == 2
        assert p1 in ann.posts
        assert sql_log.statements == []


def test_count_sees_unsaved_changes(blog_data: SimpleNamespace) -> None:
    """``count()`` of an unloaded collection counts children linked in this session but not flushed."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        Post(title="new", author=User[3])
        Post[4].author = User[3]
        assert User[3].posts.count() == 2


def test_collection_select_filters_members(blog_data: SimpleNamespace) -> None:
    """``u.posts.select(cond)``/``filter(**kw)`` query only the members that match."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        assert [p.title for p in ann.posts.select(Post.title == "p2")] == ["p2"]
        assert [p.title for p in ann.posts.filter(title="p1")] == ["p1"]
        assert list(ann.posts.select(title="p3")) == []
        assert ann.posts.select().count() == 2
        assert [p.title for p in ann.posts.select().order_by(Post.title.desc())] == ["p2", "p1"]


def test_many_to_many_collection_select_filters_members(school_data: SimpleNamespace) -> None:
    """A many-to-many collection's ``select()`` goes through the join table."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s1, s2 = Student[1], Student[2]
        assert {c.title for c in s1.courses.select()} == {"c1", "c2"}
        assert [c.title for c in s1.courses.select(Course.title == "c2")] == ["c2"]
        assert [c.title for c in s2.courses.select()] == ["c1"]
        assert Course[1].students.select(name="s2").count() == 1


def test_collection_select_of_new_owner_sees_new_members(blog: SimpleNamespace) -> None:
    """``select()`` on a new object's collection flushes first, so new members are found."""
    User, Post = blog.User, blog.Post
    with db_session:
        u = User(name="u")
        Post(title="a", author=u)
        Post(title="b", author=u)
        assert {p.title for p in u.posts.select()} == {"a", "b"}


def test_collection_load_keeps_members_after_session(blog_data: SimpleNamespace) -> None:
    """``load()`` fetches every member now, so the collection is readable after the session."""
    User = blog_data.User
    with db_session:
        ann = User[1]
        ann.posts.load()
    assert len(ann.posts) == 2
    assert sorted(p.title for p in ann.posts) == ["p1", "p2"]


def test_collection_create_links_new_member(blog_data: SimpleNamespace, other_connection: Any) -> None:
    """``u.posts.create(**kw)`` makes a new Post whose author is u."""
    User = blog_data.User
    with db_session:
        cid = User[3]
        p = cid.posts.create(title="made")
        assert p.author is cid
        assert p in cid.posts
    assert rows(other_connection, 'SELECT "author" FROM "post" WHERE "title" = ?', ("made",)) == [(3,)]


def test_constructor_accepts_collection_members(blog: SimpleNamespace) -> None:
    """``User(posts=[p, q])`` links the given children to the new object."""
    User, Post = blog.User, blog.Post
    with db_session:
        p, q = Post(title="a"), Post(title="b")
        u = User(name="u", posts=[p, q])
        assert p.author is u and q.author is u
    with db_session:
        assert {p.title for p in User.get(name="u").posts} == {"a", "b"}


def test_many_to_many_add_shows_on_both_sides(school_data: SimpleNamespace) -> None:
    """``s.courses.add(c)`` puts s in ``c.students`` (loaded) at once."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s3, c1 = Student[3], Course[1]
        assert s3 not in c1.students
        s3.courses.add(c1)
        assert s3 in c1.students
        assert c1 in s3.courses
        assert len(c1.students) == 3


def test_many_to_many_remove_shows_on_both_sides(school_data: SimpleNamespace, other_connection: Any) -> None:
    """``c.students.remove(s)`` drops c from ``s.courses`` and deletes the join row."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s1, c1 = Student[1], Course[1]
        s1.courses.load()
        c1.students.remove(s1)
        assert s1 not in c1.students
        assert c1 not in s1.courses
        assert set(s1.courses) == {Course[2]}
    assert rows(
        other_connection, 'SELECT "course", "student" FROM "course_student" ORDER BY "course", "student"'
    ) == [(1, 2), (2, 1)]


def test_many_to_many_clear_and_assign(school_data: SimpleNamespace, other_connection: Any) -> None:
    """``clear()`` and whole-collection assignment of a many-to-many collection persist exactly the new links."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        Student[1].courses.clear()
        assert list(Student[1].courses) == []
        assert set(Course[1].students) == {Student[2]}
        Course[2].students = [Student[2], Student[3]]
        assert set(Student[3].courses) == {Course[2]}
    assert rows(
        other_connection, 'SELECT "course", "student" FROM "course_student" ORDER BY "course", "student"'
    ) == [
        (1, 2),
        (2, 2),
        (2, 3),
    ]


def test_many_to_many_add_existing_link_is_a_no_op(school_data: SimpleNamespace, sql_log: Any) -> None:
    """Adding a link that already exists writes nothing."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        c1 = Course[1]
        c1.students.load()
        sql_log.clear()
        c1.students.add(Student[1])
        flush()
        assert len(c1.students) == 2
    assert writes(sql_log) == []


def test_many_to_many_add_existing_link_unloaded_is_a_no_op(
    school_data: SimpleNamespace, other_connection: Any
) -> None:
    """Adding a link that already exists, to a collection not loaded yet, neither fails nor duplicates it."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        Student[1].courses.add(Course[1])
        flush()
        assert Student[1].courses.count() == 2
    assert rows(
        other_connection, 'SELECT COUNT(*) FROM "course_student" WHERE "course" = 1 AND "student" = 1'
    ) == [(1,)]


# -- lazy loading and the identity map ------------------------------------------------------------


def test_reference_returns_object_already_in_session(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """``post.author`` is the very object the session already holds, found without a query."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        p1 = Post[1]
        sql_log.clear()
        assert p1.author is ann
        assert p1.author.name == "ann"
        assert sql_log.statements == []


def test_reference_is_lazy_and_goes_through_identity_map(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """Reading ``post.author`` runs no query; the object is the one ``User[1]`` returns; its row loads once."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        p1, p2 = Post[1], Post[2]
        sql_log.clear()
        author = p1.author
        assert sql_log.statements == []
        assert User[1] is author
        assert p2.author is author
        assert author.name == "ann"
        assert len(selects(sql_log, "User")) == 1
        assert author.name == "ann"
        assert len(selects(sql_log, "User")) == 1


def test_optional_reference_none(blog_data: SimpleNamespace) -> None:
    """An Optional reference holding NULL reads as None."""
    with db_session:
        assert blog_data.Post[4].author is None


def test_collection_is_lazy_and_loads_once(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """A collection loads with one query on first use and not again; members are identity-map objects."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        p1 = Post[1]
        ann = User[1]
        sql_log.clear()
        posts = ann.posts
        assert sql_log.statements == []
        members = list(posts)
        assert len(selects(sql_log)) == 1
        assert p1 in members
        assert {id(m) for m in members} == {id(Post[1]), id(Post[2])}
        list(ann.posts)
        len(ann.posts)
        assert len(selects(sql_log)) == 1


def test_collection_members_loaded_with_their_values(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """Loading a collection loads its members' columns: reading them runs no further query."""
    User = blog_data.User
    with db_session:
        ann = User[1]
        titles = sorted(p.title for p in ann.posts)
        sql_log.clear()
        assert sorted(p.title for p in ann.posts) == titles
        assert all(p.author is ann for p in ann.posts)
        assert sql_log.statements == []


def test_one_to_one_lazy_loads_partner(accounts: SimpleNamespace, sql_log: Any) -> None:
    """The key-less side of a one-to-one (``user.profile``) loads its partner on first read, once."""
    User, Profile = accounts.User, accounts.Profile
    with db_session:
        u = User(name="u")
        Profile(bio="hi", user=u)
        User(name="lonely")
    with db_session:
        u = User.get(name="u")
        sql_log.clear()
        profile = u.profile
        assert profile.bio == "hi"
        assert profile is Profile[1]
        assert profile.user is u
        assert u.profile is profile
        assert len(selects(sql_log)) == 1
        assert User.get(name="lonely").profile is None


def test_many_to_many_lazy_load(school_data: SimpleNamespace, sql_log: Any) -> None:
    """A many-to-many collection loads with one query through the join table."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s1 = Student[1]
        sql_log.clear()
        assert {c.title for c in s1.courses} == {"c1", "c2"}
        assert len(selects(sql_log)) == 1
        assert Course[1] in s1.courses
        assert len(selects(sql_log)) == 1


# -- prefetch -----------------------------------------------------------------------------------


def test_prefetch_reference_one_query(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """``prefetch(Post.author)`` loads every author of the result with one query, not one per post."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        sql_log.clear()
        posts = list(Post.select().prefetch(Post.author))
        assert len(selects(sql_log)) == 2
        assert next(p for p in posts if p.title == "p1").author is User[1]
        assert {p.title: (p.author.name if p.author else None) for p in posts} == {
            "p1": "ann",
            "p2": "ann",
            "p3": "bob",
            "p4": None,
        }
        assert len(selects(sql_log)) == 2


def test_prefetch_collection_one_query(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """``prefetch(User.posts)`` loads every user's posts with one query; empty ones are known empty."""
    User = blog_data.User
    with db_session:
        sql_log.clear()
        users = list(User.select().order_by(User.id).prefetch(User.posts))
        assert len(selects(sql_log)) == 2
        assert [sorted(p.title for p in u.posts) for u in users] == [["p1", "p2"], ["p3"], []]
        assert [u.posts.count() for u in users] == [2, 1, 0]
        assert len(selects(sql_log)) == 2


def test_prefetch_chain(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """``prefetch(Post.author, User.posts)`` loads authors, then the authors' posts: one query each."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        sql_log.clear()
        (p1,) = Post.select(Post.id == 1).prefetch(Post.author, User.posts)
        assert len(selects(sql_log)) == 3
        assert sorted(p.title for p in p1.author.posts) == ["p1", "p2"]
        assert Post[2] in p1.author.posts
        assert len(selects(sql_log)) == 3


def test_prefetch_many_objects(blog: SimpleNamespace, sql_log: Any) -> None:
    """Prefetch over a larger result (twenty users and posts) still runs one query per relation."""
    User, Post = blog.User, blog.Post
    with db_session:
        for i in range(20):
            u = User(name=f"u{i}")
            Post(title=f"a{i}", author=u)
            Post(title=f"b{i}", author=u)
    with db_session:
        sql_log.clear()
        users = list(User.select().prefetch(User.posts))
        assert len(selects(sql_log)) == 2
        assert all(sorted(p.title for p in u.posts) == [f"a{u.name[1:]}", f"b{u.name[1:]}"] for u in users)
        assert len(selects(sql_log)) == 2
    with db_session:
        sql_log.clear()
        posts = list(Post.select().prefetch(Post.author))
        assert len(selects(sql_log)) == 2
        assert all(p.author.name[1:] == p.title[1:] for p in posts)
        assert len(selects(sql_log)) == 2


def test_prefetch_many_to_many(school_data: SimpleNamespace, sql_log: Any) -> None:
    """``prefetch(Student.courses)`` loads every student's courses through the join table in one query."""
    Student = school_data.Student
    with db_session:
        sql_log.clear()
        students = list(Student.select().order_by(Student.id).prefetch(Student.courses))
        assert len(selects(sql_log)) == 2
        assert [sorted(c.title for c in s.courses) for s in students] == [["c1", "c2"], ["c1"], []]
        assert len(selects(sql_log)) == 2


def test_prefetch_one_to_one_partner(accounts: SimpleNamespace, sql_log: Any) -> None:
    """``prefetch(User.profile)`` loads the key-less side of a one-to-one in one query."""
    User, Profile = accounts.User, accounts.Profile
    with db_session:
        for name in ("a", "b", "c"):
            u = User(name=name)
            if name != "c":
                Profile(bio=name.upper(), user=u)
    with db_session:
        sql_log.clear()
        users = list(User.select().order_by(User.id).prefetch(User.profile))
        assert len(selects(sql_log)) == 2
        assert [u.profile.bio if u.profile else None for u in users] == ["A", "B", None]
        assert len(selects(sql_log)) == 2


def test_prefetch_ignores_attributes_no_loaded_object_has(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """An attribute of an entity the prefetch never reaches, or a column already read, costs no query."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        sql_log.clear()
        posts = Post.select().prefetch(Post.title, User.posts)[:]
        assert len(posts) == 4 and len(selects(sql_log)) == 1
    with pytest.raises(TypeError, match="must be entity class or attribute"):
        Post.select().prefetch("author")


# -- many-to-many change tracking and flush ------------------------------------------------------


def test_many_to_many_links_inserted_as_one_batch(school_data: SimpleNamespace, sql_log: Any) -> None:
    """Added links of several owners go to the join table as one EXECUTEMANY INSERT at flush."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        c3 = Course(title="c3")
        s1, s2, s3, c1 = Student[1], Student[2], Student[3], Course[1]
        flush()
        sql_log.clear()
        s1.courses.add(c3)
        s2.courses.add(c3)
        s3.courses.add([c3, c1])
        assert writes(sql_log) == []
        flush()
        assert writes(sql_log) == ["EXECUTEMANY (4) INSERT course_student"]


def test_many_to_many_links_deleted_as_one_batch(
    school_data: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """Removed links go to the join table as one EXECUTEMANY DELETE."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s1, s2, c1, c2 = Student[1], Student[2], Course[1], Course[2]
        s1.courses.remove([c1, c2])
        c1.students.remove(s2)
        sql_log.clear()
        flush()
        assert writes(sql_log) == ["EXECUTEMANY (3) DELETE course_student"]
    assert rows(other_connection, 'SELECT COUNT(*) FROM "course_student"') == [(0,)]


def test_many_to_many_single_link_is_a_plain_insert(
    school_data: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """One added link is one INSERT into the join table, with the owner and member keys."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        sql_log.clear()
        Student[3].courses.add(Course[2])
    assert writes(sql_log) == ["INSERT course_student"]
    assert (2, 3) in rows(other_connection, 'SELECT "course", "student" FROM "course_student"')


def test_many_to_many_add_then_remove_cancels(school_data: SimpleNamespace, sql_log: Any) -> None:
    """Adding and then removing the same link before a flush writes nothing (and vice versa)."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s3, s1, c1 = Student[3], Student[1], Course[1]
        sql_log.clear()
        s3.courses.add(c1)
        c1.students.remove(s3)
        c1.students.remove(s1)
        s1.courses.add(c1)
        flush()
        assert set(c1.students) == {s1, Student[2]}
    assert writes(sql_log) == []


def test_many_to_many_same_link_from_both_sides_is_one_row(
    school_data: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """Adding the same link through both collections stores one join row."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        sql_log.clear()
        Student[3].courses.add(Course[2])
        Course[2].students.add(Student[3])
    assert writes(sql_log) == ["INSERT course_student"]
    assert rows(
        other_connection, 'SELECT COUNT(*) FROM "course_student" WHERE "course" = 2 AND "student" = 3'
    ) == [(1,)]


def test_many_to_many_pending_links_are_flushed_before_queries(school_data: SimpleNamespace) -> None:
    """A pending link change alone triggers the autoflush: a query in the same session sees it."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        Student[3].courses.add(Course[2])
        Course[1].students.remove(Student[1])
        assert Course[2].students.select().count() == 2
        assert Course[1].students.select().count() == 1
        assert Student.select().count() == 3


def test_many_to_many_between_new_objects(
    school: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """Links between new objects are inserted after both rows, with their new keys."""
    Group, Student, Course = school.Group, school.Student, school.Course
    with db_session:
        g = Group(name="g")
        c = Course(title="c")
        s = Student(name="s", group=g, courses=[c])
        assert s in c.students
    assert writes(sql_log)[-1] == "INSERT course_student"
    assert rows(other_connection, 'SELECT "course", "student" FROM "course_student"') == [(1, 1)]


def test_many_to_many_round_trip(school_data: SimpleNamespace) -> None:
    """Links written in one session are read back, from both sides, in a fresh one."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        assert {s.name for s in Course[1].students} == {"s1", "s2"}
        assert {s.name for s in Course[2].students} == {"s1"}
        assert {c.title for c in Student[1].courses} == {"c1", "c2"}
        assert list(Student[3].courses) == []


# -- deletion ------------------------------------------------------------------------------------


def test_required_reverse_cascades_by_default(school_data: SimpleNamespace, other_connection: Any) -> None:
    """Deleting a group deletes its students (their group is Required), and their course links."""
    Group, Student = school_data.Group, school_data.Student
    with db_session:
        g1 = Group[1]
        s1 = Student[1]
        g1.delete()
        assert Student.get(name="s1") is None
        assert s1 not in list(school_data.Course[1].students)
    assert rows(other_connection, 'SELECT "name" FROM "student"') == [("s3",)]
    assert rows(other_connection, 'SELECT "id" FROM "group"') == [(2,)]
    assert rows(other_connection, 'SELECT COUNT(*) FROM "course_student"') == [(0,)]


def test_delete_refused_without_cascade_when_reverse_required(db: Database, other_connection: Any) -> None:
    """``cascade_delete=False`` on a Set whose reverse is Required: delete raises ConstraintError, nothing changes."""

    class Group(db.Entity):
        name = Required(str)
        students = Set("Student", cascade_delete=False)

    class Student(db.Entity):
        name = Required(str)
        group = Required(Group)

    db.generate_mapping(create_tables=True)
    with db_session:
        g = Group(name="g")
        Student(name="s", group=g)
    with db_session:
        g = Group[1]
        with pytest.raises(
            ConstraintError,
            match=re.escape(
                "Cannot delete object Group[1], because it has non-empty set of students, "
                "and 'cascade_delete' option of Group.students is not set"
            ),
        ):
            g.delete()
        assert g.name == "g"
        assert len(g.students) == 1
    assert rows(other_connection, 'SELECT COUNT(*) FROM "group"') == [(1,)]
    assert rows(other_connection, 'SELECT COUNT(*) FROM "student"') == [(1,)]


def test_delete_of_empty_parent_allowed_without_cascade(db: Database, other_connection: Any) -> None:
    """Without cascade, a parent with no children can be deleted."""

    class Group(db.Entity):
        name = Required(str)
        students = Set("Student", cascade_delete=False)

    class Student(db.Entity):
        name = Required(str)
        group = Required(Group)

    db.generate_mapping(create_tables=True)
    with db_session:
        Group(name="g")
    with db_session:
        Group[1].delete()
    assert rows(other_connection, 'SELECT COUNT(*) FROM "group"') == [(0,)]


def test_delete_with_optional_reverse_sets_null(blog_data: SimpleNamespace, other_connection: Any) -> None:
    """Deleting a user whose posts' author is Optional keeps the posts and sets their author to None."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        p1 = Post[1]
        User[1].delete()
        assert p1.author is None
    assert rows(other_connection, 'SELECT "id", "author" FROM "post" ORDER BY "id"') == [
        (1, None),
        (2, None),
        (3, 2),
        (4, None),
    ]
    assert rows(other_connection, 'SELECT "id" FROM "user" ORDER BY "id"') == [(2,), (3,)]


def test_cascade_delete_option_with_optional_reverse(db: Database, other_connection: Any) -> None:
    """``Set(..., cascade_delete=True)`` deletes the children even though their reference is Optional."""

    class User(db.Entity):
        name = Required(str)
        posts = Set("Post", cascade_delete=True)

    class Post(db.Entity):
        title = Required(str)
        author = Optional(User)

    db.generate_mapping(create_tables=True)
    with db_session:
        u = User(name="u")
        Post(title="a", author=u)
        Post(title="b", author=u)
        Post(title="c")
    with db_session:
        User[1].delete()
    assert rows(other_connection, 'SELECT "title" FROM "post"') == [("c",)]


def test_cascade_follows_several_levels(db: Database, other_connection: Any) -> None:
    """Cascades chain: deleting a forum deletes its topics and their messages."""

    class Forum(db.Entity):
        name = Required(str)
        topics = Set("Topic")

    class Topic(db.Entity):
        title = Required(str)
        messages = Set("Message")
        forum = Required(Forum)

    class Message(db.Entity):
        text = Required(str)
        topic = Required(Topic)

    db.generate_mapping(create_tables=True)
    with db_session:
        f = Forum(name="f")
        t = Topic(title="t", forum=f)
        Message(text="m1", topic=t)
        Message(text="m2", topic=t)
        other = Forum(name="other")
        Message(text="kept", topic=Topic(title="t2", forum=other))
    with db_session:
        Forum[1].delete()
    assert rows(other_connection, 'SELECT "text" FROM "message"') == [("kept",)]
    assert rows(other_connection, 'SELECT "title" FROM "topic"') == [("t2",)]


def test_foreign_keys_declare_the_cascade_the_session_runs(db: Database, other_connection: Any) -> None:
    """A reference's foreign key says ON DELETE CASCADE where deleting its target deletes the row,
    SET NULL where it clears an Optional reference, and nothing where deleting is refused."""

    class Group(db.Entity):
        students = Set("Student")
        clubs = Set("Club", cascade_delete=False)
        teams = Set("Team", cascade_delete=True)
        notes = Set("Note")

    class Student(db.Entity):
        group = Required(Group)

    class Club(db.Entity):
        group = Required(Group)

    class Team(db.Entity):
        group = Optional(Group)

    class Note(db.Entity):
        group = Optional(Group)

    db.generate_mapping(create_tables=True)
    actions = {
        entity.__name__: on_delete_actions(other_connection, entity._table_)["group"]
        for entity in (Student, Club, Team, Note)
    }
    assert actions == {"Student": "CASCADE", "Club": "NO ACTION", "Team": "CASCADE", "Note": "SET NULL"}
    assert [fk.on_delete for fk in db.schema.tables[Note._table_].foreign_keys] == ["SET NULL"]


def test_rows_deleted_by_another_client_cascade_in_the_database(
    blog_data: SimpleNamespace, other_connection: Any
) -> None:
    """A user deleted outside nextorm leaves its posts with no author: the database clears them."""
    if is_sqlite(other_connection):
        other_connection.execute("PRAGMA foreign_keys = ON")
    other_connection.execute(f'DELETE FROM "{blog_data.User._table_}" WHERE "id" = 1')
    with db_session:
        assert {p.title: p.author and p.author.name for p in blog_data.Post.select()} == {
            "p1": None,
            "p2": None,
            "p3": "bob",
            "p4": None,
        }


def test_changed_parent_deleted_after_its_changed_children(db: Database, other_connection: Any) -> None:
    """A parent changed before its children and then deleted is still deleted after them, so the
    database's cascade finds nothing left to do and the session's checked DELETEs all match."""

    class Group(db.Entity):
        name = Required(str)
        students = Set("Student")
        notes = Set("Note")

    class Student(db.Entity):
        name = Required(str)
        group = Required(Group)

    class Note(db.Entity):
        text = Required(str)
        group = Optional(Group)

    db.generate_mapping(create_tables=True)
    with db_session:
        g = Group(name="g")
        Student(name="a", group=g)
        Student(name="b", group=g)
        Note(text="n", group=g)
    with db_session:
        g = Group[1]
        g.name = "renamed"
        flush()
        Student[1].name = "a2"
        Note[1].text = "n2"
        g.delete()
    assert rows(other_connection, f'SELECT COUNT(*) FROM "{Student._table_}"') == [(0,)]
    assert rows(other_connection, f'SELECT "text", "group" FROM "{Note._table_}"') == [("n2", None)]
    assert rows(other_connection, f'SELECT COUNT(*) FROM "{Group._table_}"') == [(0,)]


def test_cascade_through_a_self_reference_deletes_the_subtree(db: Database, other_connection: Any) -> None:
    """A tree whose children cascade: deleting a node deletes its subtree, mentees only lose their mentor."""

    class Node(db.Entity):
        name = Required(str)
        parent = Optional("Node", reverse="children")
        children = Set("Node", reverse="parent", cascade_delete=True)
        mentor = Optional("Node", reverse="mentees")
        mentees = Set("Node", reverse="mentor")

    db.generate_mapping(create_tables=True)
    assert on_delete_actions(other_connection, Node._table_) == {"parent": "CASCADE", "mentor": "SET NULL"}
    with db_session:
        root = Node(name="root")
        kept = Node(name="kept")
        child = Node(name="child", parent=root, mentor=kept)
        Node(name="grandchild", parent=child)
        Node(name="mentee", mentor=root)
    with db_session:
        Node.get(name="grandchild").name = "gc"
        Node.get(name="root").delete()
    with db_session:
        assert {n.name: n.mentor for n in Node.select()} == {"kept": None, "mentee": None}


def test_deleted_child_leaves_loaded_collections(blog_data: SimpleNamespace) -> None:
    """Deleting a post removes it from its author's loaded posts at once."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        assert len(ann.posts) == 2
        p1 = Post[1]
        p1.delete()
        assert p1 not in ann.posts
        assert len(ann.posts) == 1
        assert ann.posts.count() == 1
    with db_session:
        assert [p.title for p in User[1].posts] == ["p2"]


def test_deleted_member_leaves_many_to_many_collections(
    school_data: SimpleNamespace, other_connection: Any
) -> None:
    """Deleting a course removes it from loaded ``student.courses`` and deletes its join rows."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s1 = Student[1]
        assert len(s1.courses) == 2
        Course[1].delete()
        assert [c.title for c in s1.courses] == ["c2"]
    assert rows(other_connection, 'SELECT "course", "student" FROM "course_student"') == [(2, 1)]
    assert rows(other_connection, 'SELECT "title" FROM "course"') == [("c2",)]


def test_delete_of_one_to_one_required_partner_refused_without_cascade(
    accounts: SimpleNamespace, other_connection: Any
) -> None:
    """Deleting a user whose profile requires it (no cascade_delete): ConstraintError, nothing changes."""
    User, Profile = accounts.User, accounts.Profile
    with db_session:
        Profile(bio="b", user=User(name="u"))
    with db_session:
        with pytest.raises(
            ConstraintError,
            match=re.escape(
                "Cannot delete object User[1], because it has associated profile, "
                "and 'cascade_delete' option of User.profile is not set"
            ),
        ):
            User[1].delete()
    assert rows(other_connection, 'SELECT COUNT(*) FROM "profile"') == [(1,)]
    assert rows(other_connection, 'SELECT COUNT(*) FROM "user"') == [(1,)]


def test_delete_of_one_to_one_with_cascade(db: Database, other_connection: Any) -> None:
    """``Optional('Profile', cascade_delete=True)``: deleting the user deletes its profile."""

    class User(db.Entity):
        name = Required(str)
        profile = Optional("Profile", cascade_delete=True)

    class Profile(db.Entity):
        bio = Optional(str)
        user = Required(User)

    db.generate_mapping(create_tables=True)
    with db_session:
        Profile(bio="b", user=User(name="u"))
    with db_session:
        User[1].delete()
    assert rows(other_connection, 'SELECT COUNT(*) FROM "profile"') == [(0,)]
    assert rows(other_connection, 'SELECT COUNT(*) FROM "user"') == [(0,)]


def test_delete_of_one_to_one_optional_partner_unlinks(
    couples: SimpleNamespace, other_connection: Any
) -> None:
    """Deleting one side of an Optional/Optional one-to-one leaves the other with None."""
    Husband, Wife = couples.Husband, couples.Wife
    with db_session:
        Husband(name="h", wife=Wife(name="w"))
    with db_session:
        h = Husband[1]
        Wife[1].delete()
        assert h.wife is None
    with db_session:
        assert Husband[1].wife is None
    assert rows(other_connection, 'SELECT COUNT(*) FROM "wife"') == [(0,)]


# -- one-to-one in memory ------------------------------------------------------------------------


def test_one_to_one_assignment_updates_partner(couples: SimpleNamespace) -> None:
    """``w.husband = h`` sets ``h.wife``; reassigning unlinks the previous partner."""
    Husband, Wife = couples.Husband, couples.Wife
    with db_session:
        h1, h2, w = Husband(name="h1"), Husband(name="h2"), Wife(name="w")
        w.husband = h1
        assert h1.wife is w
        h2.wife = w
        assert w.husband is h2
        assert h1.wife is None
    with db_session:
        assert Wife[1].husband is Husband[2]
        assert Husband[1].wife is None


def test_one_to_one_reassign_unlinks_partner_not_yet_loaded(
    couples: SimpleNamespace, other_connection: Any
) -> None:
    """Reassigning in a fresh session unlinks the old partner even though it was never read; it persists."""
    Husband, Wife = couples.Husband, couples.Wife
    with db_session:
        Husband(name="h1", wife=Wife(name="w"))
        Husband(name="h2")
    with db_session:
        Husband[2].wife = Wife[1]
    with db_session:
        assert Wife[1].husband is Husband[2]
        assert Husband[1].wife is None


def test_one_to_one_old_partner_not_yet_read_has_none_without_a_query(
    couples: SimpleNamespace, sql_log: Any
) -> None:
    """Moving ``h.wife`` (the side holding the unique column) away from a wife the session never
    read leaves her ``husband`` None, known without a query; assigning from her side alike."""
    Husband, Wife = couples.Husband, couples.Wife
    with db_session:
        Husband(name="h1", wife=Wife(name="w1"))
        Husband(name="h2", wife=Wife(name="w2"))
        Wife(name="w3")
    with db_session:
        h1 = Husband[1]
        h1.wife = Wife[3]
        w1 = Wife[1]
        sql_log.clear()
        assert w1.husband is None
        assert Wife[3].husband is h1
        assert selects(sql_log) == []
    with db_session:
        Husband[2].wife = None
        sql_log.clear()
        assert Wife[2].husband is None
        assert selects(sql_log, "husband") == []
    with db_session:
        assert [(h.name, h.wife) for h in Husband.select().order_by(Husband.id)] == [
            ("h1", Wife[3]),
            ("h2", None),
        ]


def test_one_to_one_required_partner_cannot_be_replaced(accounts: SimpleNamespace) -> None:
    """A second Profile for a user who has one (read this session): ConstraintError, Profile.user is required."""
    User, Profile = accounts.User, accounts.Profile
    with db_session:
        Profile(bio="first", user=User(name="u"))
    with db_session:
        u = User[1]
        assert u.profile.bio == "first"
        with pytest.raises(
            ConstraintError,
            match=re.escape(
                "Cannot unlink Profile[1] from previous User[1] object, because Profile.user attribute is required"
            ),
        ):
            Profile(bio="second", user=u)
        assert u.profile is Profile[1]


def test_one_to_one_required_partner_cannot_be_replaced_unloaded(
    accounts: SimpleNamespace, other_connection: Any
) -> None:
    """The same refusal when the user's profile was not read yet: the existing profile is looked up."""
    User, Profile = accounts.User, accounts.Profile
    with db_session:
        Profile(bio="first", user=User(name="u"))
    with db_session:
        with pytest.raises(ConstraintError, match=re.escape("because Profile.user attribute is required")):
            Profile(bio="second", user=User[1])
    assert rows(other_connection, 'SELECT "bio", "user" FROM "profile"') == [("first", 1)]


# -- flush ordering ----------------------------------------------------------------------------------


def test_referenced_new_object_inserted_first_when_created_later(
    blog: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """A post created before its (new) author is inserted after the author, with the author's new key."""
    User, Post = blog.User, blog.Post
    with db_session:
        p = Post(title="p")
        u = User(name="u")
        p.author = u
        sql_log.clear()
        flush()
        assert writes(sql_log) == ["INSERT user", "INSERT post"]
        assert p.author is u
    assert rows(other_connection, 'SELECT "title", "author" FROM "post"') == [("p", 1)]


def test_new_objects_linked_through_collection_inserted_in_dependency_order(
    blog: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """Posts created first and added to a later user's collection are inserted after the user."""
    User, Post = blog.User, blog.Post
    with db_session:
        a, b = Post(title="a"), Post(title="b")
        u = User(name="u")
        u.posts.add([a, b])
        sql_log.clear()
    assert writes(sql_log)[0] == "INSERT user"
    assert sorted(writes(sql_log)[1:]) in (
        ["INSERT post", "INSERT post"],
        ["EXECUTEMANY (2) INSERT post"],
        ["INSERT post"],  # one multi-row INSERT ... RETURNING
    )
    assert rows(other_connection, 'SELECT "title", "author" FROM "post" ORDER BY "title"') == [
        ("a", 1),
        ("b", 1),
    ]


def test_updated_object_referring_to_new_object_written_after_its_insert(
    blog_data: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """An existing post changed first and then pointed at a new user is updated after the user's INSERT."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        p4 = Post[4]
        p4.title = "renamed"
        u = User(name="new")
        p4.author = u
        sql_log.clear()
        flush()
        assert writes(sql_log) == ["INSERT user", "UPDATE post"]
    assert rows(other_connection, 'SELECT "title", "author" FROM "post" WHERE "id" = 4') == [("renamed", 4)]


def test_dependency_chain_inserted_parent_first(
    people: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """A chain of new self-references created child first is inserted root first."""
    Person = people.Person
    with db_session:
        c = Person(name="c")
        b = Person(name="b")
        a = Person(name="a")
        c.mentor = b
        b.mentor = a
    assert rows(other_connection, 'SELECT "name" FROM "person" ORDER BY "id"') == [("a",), ("b",), ("c",)]
    by_name = dict(rows(other_connection, 'SELECT "name", "id" FROM "person"'))
    assert rows(other_connection, 'SELECT "name", "mentor" FROM "person" ORDER BY "id"') == [
        ("a", None),
        ("b", by_name["a"]),
        ("c", by_name["b"]),
    ]


def test_cycle_of_new_objects_is_a_clear_error(people: SimpleNamespace, other_connection: Any) -> None:
    """New objects referring to each other in a cycle: UnresolvableCyclicDependency naming the chain; nothing saved."""
    Person = people.Person
    with pytest.raises(
        UnresolvableCyclicDependency,
        match=r"^Cannot save cyclic chain: Person\[new:\d+\] -> Person\[new:\d+\] -> Person\[new:\d+\]$",
    ):
        with db_session:
            a = Person(name="a")
            b = Person(name="b", mentor=a)
            a.mentor = b
            flush()
    assert rows(other_connection, 'SELECT COUNT(*) FROM "person"') == [(0,)]


def test_cyclic_dependency_is_a_transaction_error() -> None:
    """UnresolvableCyclicDependency is a TransactionError, as in Pony's hierarchy."""
    assert issubclass(UnresolvableCyclicDependency, TransactionError)


# -- after the session ---------------------------------------------------------------------------


def test_unloaded_collection_after_session_cannot_load(school_data: SimpleNamespace) -> None:
    """Iterating, ``len`` or ``in`` on an unloaded collection after the session: Pony's "Cannot load collection"."""
    Group, Student = school_data.Group, school_data.Student
    with db_session:
        g = Group[1]
        s = Student[1]
    message = re.escape("Cannot load collection Group[1].students: the database session is over")
    with pytest.raises(DatabaseSessionIsOver, match=message):
        list(g.students)
    with pytest.raises(DatabaseSessionIsOver, match=message):
        len(g.students)
    with pytest.raises(DatabaseSessionIsOver, match=message):
        _ = s in g.students


def test_unloaded_collection_count_after_session(school_data: SimpleNamespace) -> None:
    """``count()``/``is_empty()`` of an unloaded collection after the session: DatabaseSessionIsOver naming it."""
    Group = school_data.Group
    with db_session:
        g = Group[1]
    message = r"Group\[1\]\.students: the database session is over"
    with pytest.raises(DatabaseSessionIsOver, match=message):
        g.students.count()
    with pytest.raises(DatabaseSessionIsOver, match=message):
        g.students.is_empty()


def test_collection_change_after_session(school_data: SimpleNamespace) -> None:
    """add/remove/clear/assign/create after the session: Pony's "Cannot change collection" message."""
    Group, Student = school_data.Group, school_data.Student
    with db_session:
        g = Group[1]
        s3 = Student[3]
        list(g.students)
    message = re.escape("Cannot change collection Group[1].students: the database session is over")
    with pytest.raises(DatabaseSessionIsOver, match=message):
        g.students.add(s3)
    with pytest.raises(DatabaseSessionIsOver, match=message):
        g.students.remove(s3)
    with pytest.raises(DatabaseSessionIsOver, match=message):
        g.students.clear()
    with pytest.raises(DatabaseSessionIsOver, match=message):
        g.students = [s3]
    with pytest.raises(DatabaseSessionIsOver, match=message):
        g.students.create(name="new")
    assert len(g.students) == 2


def test_many_to_many_change_after_session(school_data: SimpleNamespace) -> None:
    """Changing a many-to-many collection after the session raises the same message."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s3, c1 = Student[3], Course[1]
    with pytest.raises(
        DatabaseSessionIsOver,
        match=re.escape("Cannot change collection Student[3].courses: the database session is over"),
    ):
        s3.courses.add(c1)


def test_str_and_repr_of_collection_after_session(school_data: SimpleNamespace) -> None:
    """After the session an unloaded collection prints ``StudentSet([...])``; a loaded one lists its members."""
    Group = school_data.Group
    with db_session:
        g1, g2 = Group[1], Group[2]
        list(g2.students)
    assert str(g1.students) == "StudentSet([...])"
    assert repr(g1.students) == "<StudentSet Group[1].students>"
    assert str(g2.students) == "StudentSet([Student[3]])"


def test_str_of_collection_in_session_lists_members(school_data: SimpleNamespace) -> None:
    """Inside the session ``str()`` loads and lists the members."""
    with db_session:
        assert str(school_data.Group[2].students) == "StudentSet([Student[3]])"


def test_loaded_collection_readable_after_session(school_data: SimpleNamespace) -> None:
    """A loaded collection keeps working after the session: len, in, iteration, count, is_empty."""
    Group, Student = school_data.Group, school_data.Student
    with db_session:
        g = Group[1]
        s1, s3 = Student[1], Student[3]
        g.students.load()
    assert len(g.students) == 2
    assert s1 in g.students and s3 not in g.students
    assert sorted(s.name for s in g.students) == ["s1", "s2"]
    assert g.students.count() == 2
    assert not g.students.is_empty()
    assert bool(g.students)


def test_loaded_reference_readable_after_session(blog_data: SimpleNamespace) -> None:
    """After the session ``post.author`` still returns the session's author object, with its loaded values."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        assert ann.name == "ann"
        p1 = Post[1]
        p3 = Post[3]
    assert p1.author is ann
    assert p1.author.name == "ann"
    with pytest.raises(
        DatabaseSessionIsOver,
        match=re.escape("Cannot load attribute User[2].name: the database session is over"),
    ):
        _ = p3.author.name


def test_reference_assignment_after_session(blog_data: SimpleNamespace) -> None:
    """Assigning a reference after the session: Pony's "Cannot assign new value" message."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        p1, bob = Post[1], User[2]
    with pytest.raises(
        DatabaseSessionIsOver,
        match=re.escape("Cannot assign new value to Post[1].author: the database session is over"),
    ):
        p1.author = bob


def test_unloaded_one_to_one_after_session(accounts: SimpleNamespace) -> None:
    """Reading the unloaded key-less side of a one-to-one after the session: "Cannot load attribute"."""
    User, Profile = accounts.User, accounts.Profile
    with db_session:
        Profile(user=User(name="u"))
    with db_session:
        u = User[1]
    with pytest.raises(
        DatabaseSessionIsOver,
        match=re.escape("Cannot load attribute User[1].profile: the database session is over"),
    ):
        _ = u.profile


# -- raw keys and queries --------------------------------------------------------------------------


def test_reference_given_as_raw_primary_key(blog_data: SimpleNamespace, other_connection: Any) -> None:
    """``Post(author=1)`` links to User[1]: the same object, in its loaded collection, persisted."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        ann.posts.load()
        p = Post(title="raw", author=1)
        assert p.author is ann
        assert p in ann.posts
        Post[4].author = 2
        assert Post[4].author is User[2]
    assert rows(other_connection, 'SELECT "author" FROM "post" WHERE "title" = ?', ("raw",)) == [(1,)]
    assert rows(other_connection, 'SELECT "author" FROM "post" WHERE "id" = 4') == [(2,)]


def test_raw_key_of_unknown_object_fails_cleanly(blog_data: SimpleNamespace, other_connection: Any) -> None:
    """A raw key no row has is refused by the foreign key: a TransactionError, and nothing is written."""
    Post = blog_data.Post
    with pytest.raises(TransactionError):
        with db_session:
            Post(title="dangling", author=999)
    assert rows(other_connection, 'SELECT COUNT(*) FROM "post" WHERE "title" = ?', ("dangling",)) == [(0,)]


def test_references_to_entities_with_str_primary_keys(db: Database, other_connection: Any) -> None:
    """A str primary key works as a foreign key: raw key values, one-to-many and many-to-many round trips."""

    class Country(db.Entity):
        code = PrimaryKey(str)
        cities = Set("City")
        languages = Set("Language")

    class Language(db.Entity):
        code = PrimaryKey(str)
        countries = Set(Country)

    class City(db.Entity):
        name = Required(str)
        country = Required(Country)

    db.generate_mapping(create_tables=True)
    with db_session:
        fr, be = Country(code="fr"), Country(code="be")
        City(name="Paris", country=fr)
        City(name="Lyon", country="fr")
        City(name="Liege", country=be)
        Language(code="french", countries=[fr, be])
        Language(code="dutch", countries=[be])
    with db_session:
        assert {c.name for c in Country["fr"].cities} == {"Paris", "Lyon"}
        assert City.get(name="Liege").country is Country["be"]
        assert {c.name for c in City.select(country="fr")} == {"Paris", "Lyon"}
        assert {lang.code for lang in Country["be"].languages} == {"french", "dutch"}
        assert [c.code for c in Language["dutch"].countries] == ["be"]
    assert rows(other_connection, 'SELECT "name", "country" FROM "city" ORDER BY "id"') == [
        ("Paris", "fr"),
        ("Lyon", "fr"),
        ("Liege", "be"),
    ]


def test_query_by_related_object_and_raw_key(blog_data: SimpleNamespace) -> None:
    """``select(author=u)``, ``Post.author == u`` and the raw-key spellings all find u's posts."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        expected = {"p1", "p2"}
        assert {p.title for p in Post.select(author=ann)} == expected
        assert {p.title for p in Post.select(author=1)} == expected
        assert {p.title for p in Post.select(Post.author == ann)} == expected
        assert {p.title for p in Post.select(Post.author == 1)} == expected
        assert {p.title for p in Post.select(Post.author != ann)} == {"p3"}
        assert Post.get(author=User[2]).title == "p3"
        assert Post.exists(author=User[2])
        assert not Post.exists(author=User[3])


def test_query_reference_in_and_null(blog_data: SimpleNamespace) -> None:
    """``Post.author.in_([...])`` takes objects and raw keys; ``is_(None)`` finds posts without author."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        assert {p.title for p in Post.select(Post.author.in_([User[1], 2]))} == {"p1", "p2", "p3"}
        assert {p.title for p in Post.select(Post.author.in_([User[3]]))} == set()
        assert [p.title for p in Post.select(Post.author.is_(None))] == ["p4"]
        assert [p.title for p in Post.select(author=None)] == ["p4"]


def test_query_by_new_related_object_flushes_first(blog: SimpleNamespace) -> None:
    """Filtering by a related object that is not saved yet finds the objects linked to it (autoflush)."""
    User, Post = blog.User, blog.Post
    with db_session:
        u = User(name="u")
        Post(title="a", author=u)
        assert [p.title for p in Post.select(author=u)] == ["a"]
        assert Post.select(Post.author == u).count() == 1


def test_query_results_link_to_identity_map_objects(blog_data: SimpleNamespace) -> None:
    """Objects returned by a query refer to the same related objects the session holds."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        ann = User[1]
        posts = list(Post.select(author=ann))
        assert all(p.author is ann for p in posts)
        assert set(posts) == set(ann.posts)


# -- errors: wrong types, other sessions -------------------------------------------------------------


def test_wrong_entity_for_reference(blog_data: SimpleNamespace) -> None:
    """An object of another entity for a reference: AttributeTypeError naming the attribute and the value."""
    Post = blog_data.Post
    with db_session:
        p1 = Post[1]
        with pytest.raises(AttributeTypeError, match=r"Post\.author.*Post\[1\]"):
            Post(title="x", author=p1)
        with pytest.raises(AttributeTypeError, match=r"Post\.author.*Post\[1\]"):
            Post[2].author = p1
        assert Post[2].author is blog_data.User[1]


def test_wrong_raw_key_type_for_reference(blog_data: SimpleNamespace) -> None:
    """A raw key of the wrong type: AttributeTypeError naming the reference attribute and the value."""
    Post = blog_data.Post
    with db_session:
        with pytest.raises(AttributeTypeError, match=r"Post\.author.*'abc'|'abc'.*Post\.author"):
            Post(title="x", author="abc")
        with pytest.raises(AttributeTypeError, match=r"Post\.author.*1\.5|1\.5.*Post\.author"):
            Post[1].author = 1.5


def test_wrong_entity_for_collection(blog_data: SimpleNamespace) -> None:
    """Adding an object of the wrong entity to a collection: AttributeTypeError naming the collection and value."""
    User = blog_data.User
    with db_session:
        with pytest.raises(AttributeTypeError, match=r"User\.posts.*User\[2\]"):
            User[1].posts.add(User[2])
        with pytest.raises(AttributeTypeError, match=r"User\.posts"):
            User[1].posts = [User[2]]
        assert len(User[1].posts) == 2


def test_wrong_entity_for_many_to_many(school_data: SimpleNamespace) -> None:
    """Adding a Group to ``student.courses``: AttributeTypeError naming Student.courses and Group[1]."""
    Group, Student = school_data.Group, school_data.Student
    with db_session:
        with pytest.raises(AttributeTypeError, match=r"Student\.courses.*Group\[1\]"):
            Student[1].courses.add(Group[1])


def test_required_reference_cannot_be_none(school_data: SimpleNamespace) -> None:
    """A Required reference missing or set to None: ValidationError naming the attribute."""
    Group, Student = school_data.Group, school_data.Student
    with db_session:
        with pytest.raises(ValidationError, match=re.escape("Attribute Student.group is required")):
            Student(name="x")
        s1 = Student[1]
        with pytest.raises(ValidationError, match=re.escape("Attribute Student[1].group is required")):
            s1.group = None
        assert s1.group is Group[1]


def test_object_from_ended_session_refused_as_reference(blog_data: SimpleNamespace) -> None:
    """Linking to an object of an ended session: TransactionError about mixing transactions."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        old_user = User[1]
    with db_session:
        with pytest.raises(
            TransactionError, match="An attempt to mix objects belonging to different transactions"
        ):
            Post(title="x", author=old_user)
        with pytest.raises(
            TransactionError, match="An attempt to mix objects belonging to different transactions"
        ):
            Post[4].author = old_user
        assert Post[4].author is None
        assert Post.select().count() == 4


def test_object_from_ended_session_refused_in_collection(blog_data: SimpleNamespace) -> None:
    """Adding an object of an ended session to a one-to-many collection: TransactionError."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        old_post = Post[4]
    with db_session:
        with pytest.raises(
            TransactionError, match="An attempt to mix objects belonging to different transactions"
        ):
            User[1].posts.add(old_post)
        assert len(User[1].posts) == 2
        assert Post[4].author is None


def test_object_from_ended_session_refused_in_many_to_many(school_data: SimpleNamespace) -> None:
    """Adding an object of an ended session to a many-to-many collection: TransactionError."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        old_course = Course[2]
    with db_session:
        with pytest.raises(
            TransactionError, match="An attempt to mix objects belonging to different transactions"
        ):
            Student[3].courses.add(old_course)
        assert len(Student[3].courses) == 0


# -- persistence and to_dict -------------------------------------------------------------------------


def test_round_trip_of_references_and_collections(blog_data: SimpleNamespace, other_connection: Any) -> None:
    """What one session linked, another reads back; the committed rows hold the keys."""
    User, Post = blog_data.User, blog_data.Post
    assert rows(other_connection, 'SELECT "id", "title", "author" FROM "post" ORDER BY "id"') == [
        (1, "p1", 1),
        (2, "p2", 1),
        (3, "p3", 2),
        (4, "p4", None),
    ]
    with db_session:
        assert Post[3].author.name == "bob"
        assert {p.title for p in User[1].posts} == {"p1", "p2"}
        assert list(User[3].posts) == []


def test_reference_change_persists_as_update(
    blog_data: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """Changing a reference is one UPDATE of the foreign key column."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        Post[1].author = User[3]
        sql_log.clear()
    assert writes(sql_log) == ["UPDATE post"]
    assert rows(other_connection, 'SELECT "author" FROM "post" WHERE "id" = 1') == [(3,)]
    with db_session:
        assert Post[1] in User[3].posts


def test_one_to_one_round_trip(accounts: SimpleNamespace, other_connection: Any) -> None:
    """A one-to-one link is stored in the key side's column and read back from both sides."""
    User, Profile = accounts.User, accounts.Profile
    with db_session:
        u = User(name="u")
        p = Profile(bio="b", user=u)
        assert u.profile is p
    assert rows(other_connection, 'SELECT "bio", "user" FROM "profile"') == [("b", 1)]
    with db_session:
        assert User[1].profile.bio == "b"
        assert Profile[1].user.name == "u"


def test_to_dict_gives_related_primary_keys(blog_data: SimpleNamespace) -> None:
    """``to_dict()`` gives a reference as the related pk (None when empty) and leaves collections out."""
    User, Post = blog_data.User, blog_data.Post
    with db_session:
        assert Post[1].to_dict() == {"id": 1, "title": "p1", "author": 1}
        assert Post[4].to_dict() == {"id": 4, "title": "p4", "author": None}
        assert User[1].to_dict() == {"id": 1, "name": "ann"}


def test_to_dict_with_collections_lists_pks(blog_data: SimpleNamespace) -> None:
    """``to_dict(with_collections=True)`` lists the members' pks of a one-to-many collection."""
    User = blog_data.User
    with db_session:
        d = User[1].to_dict(with_collections=True)
        assert set(d) == {"id", "name", "posts"}
        assert sorted(d["posts"]) == [1, 2]
        assert User[3].to_dict(with_collections=True)["posts"] == []


def test_to_dict_with_many_to_many_collections(school_data: SimpleNamespace) -> None:
    """``to_dict(with_collections=True)`` lists the members' pks of many-to-many collections, both sides."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        assert sorted(Student[1].to_dict(with_collections=True)["courses"]) == [1, 2]
        assert sorted(Course[1].to_dict(with_collections=True)["students"]) == [1, 2]
        assert Student[1].to_dict(only=["group"]) == {"group": 1}


def test_to_dict_of_one_to_one(accounts: SimpleNamespace) -> None:
    """``to_dict()`` gives both sides of a one-to-one as the partner's pk."""
    User, Profile = accounts.User, accounts.Profile
    with db_session:
        Profile(bio="b", user=User(name="u"))
        User(name="v")
    with db_session:
        assert Profile[1].to_dict() == {"id": 1, "bio": "b", "user": 1}
        assert User[1].to_dict() == {"id": 1, "name": "u", "profile": 1}
        assert User[2].to_dict() == {"id": 2, "name": "v", "profile": None}


# -- attribute access through a collection ---------------------------------------------------------


def _departments(db: Database) -> SimpleNamespace:
    class Department(db.Entity):
        number = PrimaryKey(int)
        groups = Set("Group")

    class Group(db.Entity):
        number = PrimaryKey(int)
        department = Required(Department)
        students = Set("Student")

    class Student(db.Entity):
        name = Required(str)
        group = Required(Group)
        courses = Set("Course")

    class Course(db.Entity):
        name = PrimaryKey(str)
        students = Set(Student)

    db.generate_mapping(create_tables=True)
    with db_session:
        d = Department(number=1)
        g1, g2 = Group(number=101, department=d), Group(number=102, department=d)
        c1, c2, c3 = Course(name="C1"), Course(name="C2"), Course(name="C3")
        Student(name="Ann", group=g1, courses=[c1, c2])
        Student(name="Bob", group=g1, courses=[c1])
        Student(name="Ann", group=g2, courses=[c1, c3])
    return SimpleNamespace(Department=Department, Group=Group, Student=Student, Course=Course)


def test_attribute_of_a_collection_is_a_multiset_of_values(db: Database) -> None:
    """``group.students.name`` counts each member's value; paths go on through collections."""
    m = _departments(db)
    with db_session:
        d = m.Department[1]
        names = d.groups.students.name
        assert names == ["Ann", "Bob", "Ann"] and names == {"Ann": 2, "Bob": 1}
        assert len(names) == 3 and "Bob" in names and "Cid" not in names
        courses = d.groups.students.courses
        c1, c2, c3 = m.Course["C1"], m.Course["C2"], m.Course["C3"]
        assert courses.distinct() == {c1: 3, c2: 1, c3: 1}
        assert len(courses) == 5 and bool(courses)
        assert repr(m.Group[101].students.courses) == "<CourseMultiset Group[101].students.courses (3 items)>"
        assert str(m.Group[101].students.courses) == "CourseMultiset({Course['C1']: 2, Course['C2']: 1})"
        assert m.Group[102].students.courses.students.group == [m.Group[101]] * 2 + [m.Group[102]] * 2
    assert repr(courses) == "<CourseMultiset Department[1].groups.students.courses>"


def test_unknown_attribute_of_a_collection_is_an_attribute_error(db: Database) -> None:
    """A name that is not an attribute of the members raises AttributeError naming the entity."""
    m = _departments(db)
    with db_session, pytest.raises(AttributeError, match="Student has no attribute 'age'"):
        m.Group[101].students.age


# -- one-to-one: which side holds the column -------------------------------------------------------------


def test_symmetric_one_to_one_stores_the_partner_in_both_rows(db: Database, other_connection: Any) -> None:
    """``spouse = Optional('Person', reverse='spouse')``: each row holds its partner's key, kept in step."""

    class Person(db.Entity):
        name = Required(str)
        spouse = Optional("Person", reverse="spouse")

    db.generate_mapping(create_tables=True)
    with db_session:
        a, b, c = Person(name="a"), Person(name="b"), Person(name="c")
        a.spouse = b
        assert b.spouse is a
    assert rows(other_connection, 'SELECT "id", "spouse" FROM "person" ORDER BY "id"') == [(1, 2), (2, 1), (3, None)]
    with db_session:
        a, b, c = Person[1], Person[2], Person[3]
        c.spouse = a
        assert (a.spouse, b.spouse, c.spouse) == (c, None, a)
    assert rows(other_connection, 'SELECT "id", "spouse" FROM "person" ORDER BY "id"') == [(1, 3), (2, None), (3, 1)]
    with db_session:
        Person[3].delete()
    assert rows(other_connection, 'SELECT "id", "spouse" FROM "person" ORDER BY "id"') == [(1, None), (2, None)]


def test_one_to_one_between_attributes_of_one_entity_stores_the_first_declared(
    db: Database, other_connection: Any
) -> None:
    """Two Optional attributes of one entity pointing at each other: the one declared first holds the column."""

    class Node(db.Entity):
        name = Required(str)
        next = Optional("Node", reverse="previous")
        previous = Optional("Node", reverse="next")

    db.generate_mapping(create_tables=True)
    assert "next" in column_info(other_connection, Node._table_)
    assert "previous" not in column_info(other_connection, Node._table_)
    with db_session:
        a = Node(name="a")
        Node(name="b", previous=a)
    with db_session:
        a, b = Node.get(name="a"), Node.get(name="b")
        assert a.next is b and b.previous is a


def test_one_to_one_whose_both_sides_name_a_column_keeps_both_columns(db: Database, other_connection: Any) -> None:
    """``column=`` on both sides: each table holds its partner's key, and both are kept in step."""

    class Male(db.Entity):
        name = Required(str)
        wife = Optional("Female", column="wife")

    class Female(db.Entity):
        name = Required(str)
        husband = Optional(Male, column="husband")

    db.generate_mapping(create_tables=True)
    with db_session:
        f1, f2 = Female(name="F1"), Female(name="F2")
        Male(name="M1", wife=f1)
        Male(name="M2", wife=f2)
    pairs = 'SELECT m."name", f."name" FROM "male" m JOIN "female" f ON f."id" = m."wife" AND m."id" = f."husband"'
    assert sorted(rows(other_connection, pairs)) == [("M1", "F1"), ("M2", "F2")]
    with db_session:
        m1 = Male.get(name="M1")
        f2 = Female.get(name="F2")
        m1.wife = f2
        assert f2.husband is m1 and Male.get(name="M2").wife is None and Female.get(name="F1").husband is None
    assert rows(other_connection, pairs) == [("M1", "F2")]
    assert rows(other_connection, 'SELECT COUNT(*) FROM "male" WHERE "wife" IS NULL') == [(1,)]
    assert rows(other_connection, 'SELECT COUNT(*) FROM "female" WHERE "husband" IS NULL') == [(1,)]


def test_lazy_loads_of_one_owner_reuse_the_text_with_each_key(blog_data: SimpleNamespace, sql_log: Any) -> None:
    """Loading one owner's collection after another sends the same SELECT text with each owner's key,
    and each gets its own members (a member moved in the session stays where the session put it)."""
    blog = blog_data
    with db_session:
        users = blog.User.select().order_by(blog.User.id)[:]
        blog.Post[3].author = users[0]  # moved before any collection is loaded
        sql_log.clear()
        assert sorted(p.title for p in users[0].posts) == ["p1", "p2", "p3"]
        assert sorted(p.title for p in users[1].posts) == []
        assert sorted(p.title for p in users[2].posts) == []
        texts = [s for s in sql_log.statements if s.startswith("SELECT")]
    assert len(texts) == 3 and len(set(texts)) == 1
    keys = [record.split("\n")[1] for record in sql_log.records if record.startswith("SELECT")]
    assert len(set(keys)) == 3
    with db_session:
        assert [sorted(p.title for p in u.posts) for u in blog.User.select().order_by(blog.User.id)] == [
            ["p1", "p2", "p3"],
            [],
            [],
        ]


# -- collection arguments, cascade declarations, cascade loading --------------------------------


@pytest.mark.parametrize("change", ["add", "remove", "constructor"])
def test_none_is_not_an_item_of_a_collection(blog_data: SimpleNamespace, change: str) -> None:
    """``add(None)``, ``remove(None)`` and ``User(posts=None)`` raise a ValueError naming the entity expected."""
    with db_session:
        ann = blog_data.User.get(name="ann")
        with pytest.raises(ValueError, match=r"^A single Post instance or Post iterable is expected\. Got: None$"):
            if change == "constructor":
                blog_data.User(name="dan", posts=None)
            else:
                getattr(ann.posts, change)(None)
        assert {p.title for p in ann.posts} == {"p1", "p2"}
        assert blog_data.User.get(name="dan") is None


def test_wrong_item_of_a_collection_names_the_collection(blog_data: SimpleNamespace) -> None:
    """An item of another type is refused with a message naming the collection, the type and the value."""
    with db_session:
        ann = blog_data.User.get(name="ann")
        with pytest.raises(AttributeTypeError, match=r"^Item of collection User\.posts must be Post\. Got int: 1$"):
            ann.posts.add(1)






def test_cascading_delete_loads_each_level_with_one_query(db: Database, other_connection: Any) -> None:
    """Deleting a tree loads the children of a whole level of the cascade at once: one SELECT per level."""

    class Node(db.Entity):
        id = PrimaryKey(int)
        parent = Optional("Node", reverse="children")
        children = Set("Node", reverse="parent", cascade_delete=True)

    db.generate_mapping(create_tables=True)
    tree = {2: 1, 3: 1, 4: 3, 5: 3, 6: 5, 7: 3, 8: 7, 9: 7, 11: 10}
    with db_session:
        for key in (1, 10):
            Node(id=key)
        for key, parent in tree.items():
            Node(id=key, parent=parent)
    with db_session:
        root = Node[1]
        db.merge_local_stats()
        root.delete()
        ran = [sql for sql in db.local_stats if sql is not None]
        # levels {1}, {2, 3}, {4, 5, 7}, {6, 8, 9}; nothing is written before the commit
        assert db.local_stats[None].db_count == 4
        assert all(sql.startswith("SELECT") and '"parent"' in sql for sql in ran)
        assert sorted(n.id for n in nextorm.active_session().deleted) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert sorted(rows(other_connection, 'SELECT "id" FROM "node"')) == [(10,), (11,)]


def test_many_to_many_load_counts_unflushed_links_without_writing(
    school_data: SimpleNamespace, sql_log: Any, other_connection: Any
) -> None:
    """Loading a many-to-many collection takes this session's unflushed links into account instead of
    flushing them: adding then removing a member writes nothing at all."""
    Student, Course = school_data.Student, school_data.Course
    with db_session:
        s3, c1 = Student.get(name="s3"), Course.get(title="c1")
        sql_log.clear()
        s3.courses.add(c1)
        assert set(s3.courses) == {c1}  # loaded: the database has none, the pending link counts
        assert s3 in c1.students
        s3.courses.clear()
        assert set(s3.courses) == set() and s3 not in c1.students
    assert writes(sql_log) == []
    with db_session:
        s1, c1, c2 = Student.get(name="s1"), Course.get(title="c1"), Course.get(title="c2")
        s1.courses.remove(c2)
        assert set(s1.courses) == {c1}  # the unflushed removal counts
    query = f'SELECT "course" FROM "{Student.courses.table}" WHERE "student" = 1'
    assert [r[0] for r in rows(other_connection, query)] == [1]


def test_set_table_names_the_join_table_after_mapping(school: SimpleNamespace) -> None:
    """``Student.courses.table`` is the join table's name on both sides once the mapping is generated."""
    table = school.Student.courses.table
    assert table == school.Course.students.table == default_name(school.Student._database_, "Course_Student")
