"""``Entity.get()`` answered from the session (docs/sessions.md, "Reads the session answers"):
a primary key and other loaded attributes need no query."""

from __future__ import annotations

from typing import Any

from nextorm import Database, Optional, PrimaryKey, Required, db_session


def test_get_by_key_and_loaded_attributes_needs_no_query(db: Database) -> None:
    """``get(key, attr=value)`` of an object the session holds compares in memory: the object or None."""

    class User(db.Entity):
        username = PrimaryKey(str)
        email = Optional(str)

    class Admin(User):
        level = Required(int, default=1)

    db.generate_mapping(create_tables=True)
    with db_session:
        User(username="ann", email="a@x")
        Admin(username="root", email="r@x", level=3)
    with db_session:
        ann = User["ann"]
        root = Admin["root"]
        db.merge_local_stats()
        assert User.get(username="ann", email="a@x") is ann
        assert User.get(username="ann", email="other") is None
        db.merge_local_stats()
        assert Admin.get(username="root", level=3) is root
        assert Admin.get(username="root", level=2) is None
        assert Admin.get(username="ann", email="a@x") is None  # the session knows ann is no Admin
        ann.email = "new@x"  # the session's own value counts, as a query after the flush would see it
        assert User.get(username="ann", email="new@x") is ann
        assert db.local_stats[None].db_count == 0


def test_get_queries_when_the_session_cannot_answer(db: Database, other_connection: Any) -> None:
    """An object not in the session, or an attribute not loaded, is looked up in the database."""

    class Doc(db.Entity):
        id = PrimaryKey(int)
        title = Required(str)
        body = Optional(str, lazy=True)

    db.generate_mapping(create_tables=True)
    with db_session:
        Doc(id=1, title="t", body="b")
    with db_session:
        db.merge_local_stats()
        doc = Doc.get(id=1, title="t")
        assert doc is not None and db.local_stats[None].db_count == 1
        assert Doc.get(id=1, body="b") is doc  # body is lazy and not loaded yet: a query
        assert db.local_stats[None].db_count == 2
        assert Doc.get(id=2, title="t") is None
        assert db.local_stats[None].db_count == 3
