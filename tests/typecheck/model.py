"""The README's model, for type checkers: ``# revealed:`` gives the type a line reveals, ``# error`` a line that must fail.

tests/test_typing.py runs mypy and pyright, both strict, over this file; it is never imported.
"""

from decimal import Decimal
from typing import reveal_type

from nextorm import (
    Database,
    Entity,
    Json,
    Optional,
    PrimaryKey,
    Required,
    Set,
    composite_key,
    db_session,
    desc,
    get,
    select,
)

db = Database()


class Person(Entity, db=db):
    id = PrimaryKey(int, auto=True)
    name = Required(str, max_len=100)
    email = Optional(str, unique=True)
    age = Required(int, default=0)
    balance = Required(Decimal, 12, 2, default=Decimal(0))
    settings = Optional(Json)
    posts: Set["Post"] = Set("Post")


class Post(Entity, db=db):
    title = Required(str)
    author = Required(Person)
    editor = Optional(Person, reverse="edited")
    slug = Required(str)
    composite_key(title, slug)
    comments: Set["Comment"] = Set("Comment")


class Comment(Entity, db=db):
    post: Required["Post"] = Required("Post")
    text = Optional(str)


class Tag(Entity, db=db):
    name = Required(str)
    kind = Required(str)
    PrimaryKey(name, kind)


reveal_type(Person.age)  # revealed: Required[int]
reveal_type(Person.posts)  # revealed: SetAttr[Post]
reveal_type(Person.age > 18)  # revealed: Expr


@db_session
def rename(person_id: int, name: str) -> Person:
    person: Person = Person[person_id]  # mypy reads `x = Person[...]` as a type alias: annotate
    person.name = name
    return person


@db_session(retry=3)
def adults(minimum: int) -> list[Person]:
    return list(Person.select(Person.age >= minimum).order_by(desc(Person.age)))


reveal_type(select(p for p in Person if p.age > 18))  # revealed: Query[Person]
reveal_type(get(p for p in Person if p.name == "Ann"))  # revealed: Person | None
reveal_type(rename)  # revealed: (person_id: int, name: str) -> Person
reveal_type(adults(18))  # revealed: list[Person]
rename("1", "Ann")  # error


def main() -> None:
    with db_session:
        reveal_type(Person[1])  # revealed: Person
        p = Person.get(id=1)
        assert p is not None
        reveal_type(p.id)  # revealed: int
        reveal_type(p.name)  # revealed: str
        reveal_type(p.email)  # revealed: str | None
        reveal_type(p.balance)  # revealed: Decimal
        reveal_type(p.posts)  # revealed: SetInstance[Post]
        reveal_type(Person.get(name="Ann"))  # revealed: Person | None
        query = Person.select(Person.age > 18)
        reveal_type(query)  # revealed: Query[Person]
        reveal_type(query.first())  # revealed: Person | None
        reveal_type(query[:10])  # revealed: QueryResult[Person]
        reveal_type(query[0])  # revealed: Person
        for person in Person.select():
            reveal_type(person)  # revealed: Person
        for known in Person:
            reveal_type(known)  # revealed: Person
        for post in p.posts:
            reveal_type(post)  # revealed: Post
            reveal_type(post.author)  # revealed: Person
            reveal_type(post.editor)  # revealed: Person | None
            for comment in post.comments:
                reveal_type(comment.post)  # revealed: Post
                reveal_type(comment.text)  # revealed: str | None
        reveal_type(p.posts.select(Post.title == "Hi"))  # revealed: Query[Post]
        reveal_type(p.posts.create(title="Hi", slug="hi"))  # revealed: Post
        p.email = None
        p.age = 31
        p.age = "three"  # error
        _n: int = p.name  # error
        p.name = None  # error
        post = Post(title="Hello", slug="hello", author=p)
        post.author = post  # error


async def oldest() -> Person | None:
    async with db_session:
        reveal_type(await Person.aget(name="Ann"))  # revealed: Person | None
        async for person in Person.select():
            reveal_type(person)  # revealed: Person
        reveal_type(await Person.select().afetch())  # revealed: QueryResult[Person]
        return await Person.select().order_by(desc(Person.age)).afirst()
