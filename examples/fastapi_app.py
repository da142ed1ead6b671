"""A FastAPI application on nextorm: a session per request, committed before the response.

Serve it with any ASGI server (``uvicorn examples.fastapi_app:app``), or run
``python examples/fastapi_app.py`` to drive it with FastAPI's TestClient and check every
answer. ``NEXTORM_EXAMPLE_DSN`` (a ``postgresql://`` DSN) runs it on PostgreSQL; by default
it uses a SQLite file in a temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI

from nextorm import Database, Optional, PrimaryKey, Required, Set, db_session
from nextorm.integrations.fastapi import SessionRoute, add_exception_handlers

DSN = os.environ.get("NEXTORM_EXAMPLE_DSN", "")
if DSN:
    db = Database("postgres", dsn=DSN)
else:
    db = Database("sqlite", str(Path(tempfile.mkdtemp()) / "blog.sqlite"), create_db=True)


class Author(db.Entity):
    _table_ = "example_author"
    id = PrimaryKey(int, auto=True)
    name = Required(str, max_len=100)
    email = Optional(str, unique=True)
    posts = Set("Post")


class Post(db.Entity):
    _table_ = "example_post"
    id = PrimaryKey(int, auto=True)
    title = Required(str)
    views = Required(int, default=0)
    author = Required(Author)


db.generate_mapping(create_tables=True)

app = FastAPI(title="nextorm blog")
app.router.route_class = SessionRoute  # set before the routes are declared
add_exception_handlers(app)  # ObjectNotFound -> 404, integrity and concurrency conflicts -> 409


@app.post("/authors")
def create_author(name: str, email: str | None = None) -> dict[str, Any]:
    """A plain ``def`` endpoint: FastAPI runs it in a worker thread, in its own session."""
    author = Author(name=name, email=email)
    author.flush()  # assigns author.id
    return author.to_dict()


@app.get("/authors/{author_id}")
def read_author(author_id: int) -> dict[str, Any]:
    """404 when there is no such author."""
    author = Author[author_id]
    return {**author.to_dict(), "posts": sorted(post.title for post in author.posts)}


@app.post("/authors/{author_id}/posts")
async def create_post(author_id: int, title: str) -> dict[str, Any]:
    """An ``async def`` endpoint on a sync Database is allowed too (it blocks the loop while it waits)."""
    post = Post(title=title, author=author_id)  # a missing author fails at COMMIT: a 409, not a 200
    post.flush()
    return {"id": post.id, "title": post.title}


@app.post("/posts/{post_id}/view")
def view_post(post_id: int, tasks: BackgroundTasks) -> dict[str, str]:
    """Count the view after the response: the task gets a session of its own."""
    tasks.add_task(count_view, post_id)  # pass keys, not objects: the request's session is over
    return {"status": "counted later"}


def count_view(post_id: int) -> None:
    """Runs after the response, in its own session."""
    Post[post_id].views += 1


def main() -> None:
    """Drive the application as a client would and check every answer."""
    from fastapi.testclient import TestClient  # needs httpx, which serving the app does not

    with TestClient(app, raise_server_exceptions=False) as client:
        ann = client.post("/authors", params={"name": "Ann", "email": "ann@example.com"}).json()
        print("created", ann)
        clash = client.post("/authors", params={"name": "Ann again", "email": "ann@example.com"})
        print("same email:", clash.status_code, clash.json()["error"])
        assert clash.status_code == 409
        post = client.post(f"/authors/{ann['id']}/posts", params={"title": "Hello"}).json()
        orphan = client.post("/authors/999/posts", params={"title": "Nobody's"})
        print("post by a missing author:", orphan.status_code, orphan.json()["error"])
        assert orphan.status_code == 409
        client.post(f"/posts/{post['id']}/view")
        missing = client.get("/authors/999")
        print("missing author:", missing.status_code, missing.json()["detail"])
        assert missing.status_code == 404
        page = client.get(f"/authors/{ann['id']}").json()
        print("read back", page)
        assert page["posts"] == ["Hello"]
    with db_session:
        assert Post.select().count() == 1 and Post[post["id"]].views == 1
        assert Author.select().count() == 1
    print("ok: committed before each response, nothing written by the failed requests")


if __name__ == "__main__":
    main()
