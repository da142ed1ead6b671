"""A schema evolved through six migrations with rows in every table, upgraded and downgraded
(docs/migrations.md, README "Migrations"): every row survives, every step matches its entities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nextorm import Database, Optional, Required, Set, composite_key, db_session
from nextorm.migrate import downgrade, init, make, status, upgrade

#: the rows of version 1 that every later version still holds: (name, age) and (title, author name)
PEOPLE = [("Ann", 30), ("Bob", 41), ("Cy", 25)]
POSTS = [("Hello", "Ann"), ("Again", "Ann"), ("Bob's", "Bob")]


def declare(db: Database, version: int) -> Database:
    """The entities of one version of the model, on ``db`` (mapped, tables checked)."""

    class Person(db.Entity):
        if version >= 3:
            full_name = Required(str)
        else:
            name = Required(str)
        if version >= 3:
            age = Optional(int)  # nullability changed
        else:
            age = Required(int)
        if version >= 4:
            email = Optional(str)  # unique key dropped
        elif version >= 2:
            email = Optional(str, unique=True)
        if 2 <= version <= 2:
            score = Required(int, default=5)  # required column added to a table with rows
        elif 3 <= version <= 5:
            score = Required(float, default=5.0)  # type changed
        posts = Set("Post")
        if version >= 4:
            composite_key(full_name, age)

    class Post(db.Entity):
        if version in (2, 3):
            title = Required(str, index=True)
        else:
            title = Required(str)
        author = Required(Person)
        if 2 <= version <= 4:
            tags = Set("Tag")
        if version >= 5:
            comments = Set("Comment")

    if 2 <= version <= 4:

        class Tag(db.Entity):
            label = Required(str, unique=True)
            posts = Set(Post)

    if version >= 5:

        class Comment(db.Entity):
            body = Required(str)
            if version >= 6:
                post = Optional(Post)
            else:
                post = Required(Post)

    db.generate_mapping(check_tables=False)
    return db


def name_of(person: Any) -> str:
    return person.full_name if hasattr(person, "full_name") else person.name


def check_rows(db: Database) -> None:
    """The people and posts of version 1 are all there, with their values and links."""
    Person, Post = db.entities["Person"], db.entities["Post"]
    with db_session:
        people = {name_of(p): p for p in Person.select()}
        assert sorted((n, p.age) for n, p in people.items()) == sorted([*PEOPLE[:2], ("Dee", 52)])
        assert people["Ann"].id == 1 and people["Bob"].id == 2
        posts = sorted((p.title, name_of(p.author)) for p in Post.select())
        assert posts == sorted(POSTS)


def test_six_migrations_up_and_down_keep_every_row(new_db: Callable[[], Database], migrations: str) -> None:
    """Six versions, each made, reviewed by `make` and applied; then undone one by one to the first."""
    v1 = declare(new_db(), 1)
    init(v1, migrations)
    assert make(v1, "people and posts", migrations) is not None
    upgrade(v1, "head", migrations)
    v1.check_tables()
    Person, Post = v1.entities["Person"], v1.entities["Post"]
    with db_session:
        people = {name: Person(name=name, age=age) for name, age in PEOPLE}
        for title, author in POSTS:
            Post(title=title, author=people[author])
    with db_session:
        Person[3].delete()  # the highest key: a rebuilt table must not give it out again
    with db_session:
        Person(name="Dee", age=52)  # id 4
        Person(name="Zed", age=1)  # id 5, the highest key, deleted: a rebuild would reuse it
    with db_session:
        Person[5].delete()
    check_rows(v1)

    renames = {3: [f"{v1.entities['Person']._table_}.name=full_name"]}
    db = v1
    for version in range(2, 7):
        db.disconnect()  # done with the previous version: its pooled connection goes
        db = declare(new_db(), version)
        path = make(db, f"version {version}", migrations, renames=renames.get(version, ()))
        assert path is not None
        upgrade(db, "head", migrations)
        db.check_tables()
        assert status(db, migrations).up_to_date, status(db, migrations).differences
        check_rows(db)
        if version == 2:
            with db_session:
                # the required column added to rows that were there got its default
                assert {p.score for p in db.entities["Person"].select()} == {5}
                tag = db.entities["Tag"](label="news")
                for post in db.entities["Post"].select():
                    post.tags.add(tag)
        if version == 3:
            with db_session:
                assert {p.score for p in db.entities["Person"].select()} == {5.0}
                assert db.entities["Tag"].get(label="news").posts.count() == 3
        if version == 5:
            with db_session:
                db.entities["Comment"](body="first", post=db.entities["Post"][1])

    with db_session:
        # after the table rebuilds (on SQLite) the deleted highest key 5 is still never given out again
        newest = db.entities["Person"](full_name="Eve", age=None)
        newest.flush()
        assert newest.id == 6
        newest.delete()
    with db_session:
        assert db.entities["Comment"][1].post.title == "Hello"

    older = db
    for version in range(5, 0, -1):
        downgrade(db, "-1", migrations)
        older.disconnect()
        older = declare(new_db(), version)
        older.check_tables()
        assert status(older, migrations).differences == []
        check_rows(older)
    with db_session:
        fay = older.entities["Person"](name="Fay", age=1)
        fay.flush()
        assert fay.id == 7
