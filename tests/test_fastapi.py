"""The FastAPI integration of the docs' "FastAPI" page: a db_session per request.

Each test builds a small application whose routes use ``SessionRoute`` and drives it with
FastAPI's ``TestClient``, on SQLite and (when ``NEXTORM_TEST_POSTGRES`` is set) PostgreSQL,
through conftest's ``db`` (sync endpoints) and ``adb`` (async endpoints) fixtures.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import APIRouter, BackgroundTasks, FastAPI
from fastapi.testclient import TestClient
from starlette.middleware.base import BaseHTTPMiddleware

from nextorm import AsyncDatabase, Database, PrimaryKey, Required, Set, TransactionError
from nextorm.integrations.fastapi import SessionRoute, add_exception_handlers, session_route

POSTGRES_DSN = os.environ.get("NEXTORM_TEST_POSTGRES", "")


def declare(database: Database) -> tuple[type, type]:
    """Map Author and Post (a deferred foreign key to Author) onto ``database``."""

    class Author(database.Entity):
        _table_ = "author"
        id = PrimaryKey(int, auto=True)
        name = Required(str)
        posts = Set("Post")

    class Post(database.Entity):
        _table_ = "post"
        id = PrimaryKey(int, auto=True)
        title = Required(str)
        author = Required(Author)

    database.generate_mapping(create_tables=True)
    return Author, Post


def rows(conn: Any, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` as another client sees it, ordered by id."""
    return [tuple(row) for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()]


class SeenAtResponseStart:
    """ASGI wrapper recording what another client saw in the database when the response started."""

    def __init__(self, app: Any, look: Callable[[], Any]) -> None:
        self.app = app
        self.look = look
        self.seen: list[Any] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.seen.append(self.look())
            await send(message)

        await self.app(scope, receive, watch)


@pytest.fixture
def sync_app(db: Database) -> Iterator[tuple[FastAPI, type, type]]:
    """An application with plain ``def`` endpoints on ``db``."""
    Author, Post = declare(db)
    app = FastAPI()
    app.router.route_class = SessionRoute
    add_exception_handlers(app)

    @app.post("/authors")
    def create_author(name: str) -> dict[str, Any]:
        author = Author(name=name)
        author.flush()
        return {"id": author.id, "name": author.name}

    @app.get("/authors/{author_id}")
    def read_author(author_id: int) -> dict[str, Any]:
        return Author[author_id].to_dict()

    @app.post("/posts")
    def create_post(title: str, author_id: int) -> dict[str, str]:
        Post(title=title, author=author_id)  # a missing author fails only at COMMIT (deferred key)
        return {"title": title}

    @app.post("/authors/{author_id}/rename")
    def rename_later(author_id: int, name: str, tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(rename, author_id, name)
        return {"status": "queued"}

    def rename(author_id: int, name: str) -> None:
        Author[author_id].name = name

    yield app, Author, Post


@pytest.fixture
def async_app(adb: AsyncDatabase) -> Iterator[tuple[FastAPI, type, type]]:
    """An application with ``async def`` endpoints on ``adb``, disconnected at shutdown."""
    Author, Post = declare(adb)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await adb.adisconnect()

    app = FastAPI(lifespan=lifespan)
    add_exception_handlers(app)
    router = APIRouter(route_class=SessionRoute)

    @router.post("/authors")
    async def create_author(name: str) -> dict[str, Any]:
        author = Author(name=name)
        await author.aflush()
        return {"id": author.id, "name": author.name}

    @router.post("/posts")
    async def create_post(title: str, author_id: int) -> dict[str, str]:
        Post(title=title, author=author_id)
        return {"title": title}

    @router.post("/authors/{author_id}/rename")
    async def rename_later(author_id: int, name: str, tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(rename, author_id, name)
        return {"status": "queued"}

    async def rename(author_id: int, name: str) -> None:
        author = await Author.aget(id=author_id)
        author.name = name

    app.include_router(router)
    yield app, Author, Post


@pytest.fixture(params=["sync", "async"])
def app(request: pytest.FixtureRequest) -> tuple[FastAPI, type, type]:
    """The sync-endpoint and the async-endpoint application in turn."""
    return request.getfixturevalue(f"{request.param}_app")  # type: ignore[no-any-return]


def test_request_is_committed_before_the_response_starts(
    app: Any, db_path: str, pg_schema: str | None
) -> None:
    """The row a request wrote is visible to other clients when its response starts."""
    application, _, _ = app

    def look() -> list[tuple[Any, ...]]:
        """The author table as a new client connecting from the server's thread sees it."""
        if pg_schema is None:
            with contextlib.closing(sqlite3.connect(db_path)) as conn:
                return rows(conn, "author")
        import psycopg

        with psycopg.connect(POSTGRES_DSN, options=f"-c search_path={pg_schema}") as conn:
            return rows(conn, "author")

    watcher = SeenAtResponseStart(application, look)
    with TestClient(watcher) as client:
        response = client.post("/authors", params={"name": "Ann"})
    assert response.status_code == 200
    assert response.json() == {"id": 1, "name": "Ann"}
    assert watcher.seen == [[(1, "Ann")]]


def test_failed_commit_is_an_error_response_and_writes_nothing(app: Any, other_connection: Any) -> None:
    """A commit refused by a deferred foreign key answers 5xx, never 200, and leaves no row."""
    application, _, _ = app
    with TestClient(application, raise_server_exceptions=False) as client:
        assert client.post("/authors", params={"name": "Ann"}).status_code == 200
        response = client.post("/posts", params={"title": "orphan", "author_id": 999})
        assert response.status_code == 409  # TransactionIntegrityError, via add_exception_handlers
        assert response.json()["error"] == "TransactionIntegrityError"
        assert client.post("/posts", params={"title": "kept", "author_id": 1}).status_code == 200
    assert [row[1] for row in rows(other_connection, "post")] == ["kept"]


def test_failed_commit_without_handlers_is_a_500(db: Database, other_connection: Any) -> None:
    """Without ``add_exception_handlers`` a failed commit is FastAPI's plain 500, for def and async def."""
    _, Post = declare(db)
    app = FastAPI()
    app.router.route_class = SessionRoute

    @app.post("/posts")
    def create_post() -> dict[str, str]:
        Post(title="orphan", author=999)
        return {"status": "created"}

    @app.post("/async-posts")
    async def create_post_async() -> dict[str, str]:
        Post(title="async orphan", author=999)
        return {"status": "created"}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.post("/posts").status_code == 500
        assert client.post("/async-posts").status_code == 500
    assert rows(other_connection, "post") == []


def test_background_task_gets_its_own_session(app: Any, other_connection: Any) -> None:
    """A background task runs after the request's session ended, in a session of its own that commits."""
    application, _, _ = app
    with TestClient(application) as client:
        client.post("/authors", params={"name": "Ann"})
        response = client.post("/authors/1/rename", params={"name": "Bo"})
    assert response.json() == {"status": "queued"}
    assert rows(other_connection, "author") == [(1, "Bo")]


def test_sessions_work_behind_base_http_middleware(app: Any, other_connection: Any) -> None:
    """A ``BaseHTTPMiddleware`` (which runs the app in another task) does not disturb the request's session."""
    application, _, _ = app
    seen: list[int] = []

    async def count_status(request: Any, call_next: Any) -> Any:
        response = await call_next(request)
        seen.append(response.status_code)
        return response

    application.add_middleware(BaseHTTPMiddleware, dispatch=count_status)
    with TestClient(application, raise_server_exceptions=False) as client:
        assert client.post("/authors", params={"name": "Ann"}).status_code == 200
        assert client.post("/posts", params={"title": "orphan", "author_id": 999}).status_code == 409
    assert seen == [200, 409]
    assert rows(other_connection, "author") == [(1, "Ann")]
    assert rows(other_connection, "post") == []


def test_missing_object_is_a_404(sync_app: Any) -> None:
    """``ObjectNotFound`` from ``Entity[pk]`` answers 404 naming the object."""
    application, _, _ = sync_app
    with TestClient(application) as client:
        response = client.get("/authors/333")
    assert response.status_code == 404
    assert response.json() == {"detail": "Author[333]", "error": "ObjectNotFound"}


def test_session_route_options_retry_the_endpoint(db: Database, other_connection: Any) -> None:
    """``session_route(retry=1)`` re-runs an endpoint whose session failed with a TransactionError,
    also on a router included into the application (its endpoint is wrapped once, not twice)."""
    Author, _ = declare(db)
    router = APIRouter(route_class=session_route(retry=1))
    calls: list[int] = []

    @router.post("/authors")
    def create_author() -> dict[str, int]:
        Author(name=f"try {len(calls)}")
        calls.append(1)
        if len(calls) == 1:
            raise TransactionError("the first try fails")
        return {"tries": len(calls)}

    (route,) = router.routes
    # Older FastAPI versions re-create included routes from their endpoints: no second wrapper.
    assert type(route)("/authors", route.endpoint, methods=["POST"]).endpoint is route.endpoint
    app = FastAPI()
    app.include_router(router)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a nested retry would warn that it is ignored
        with TestClient(app) as client:
            assert client.post("/authors").json() == {"tries": 2}
    assert [row[1] for row in rows(other_connection, "author")] == ["try 1"]


def test_endpoint_signature_still_drives_validation(sync_app: Any) -> None:
    """Wrapping the endpoint keeps FastAPI's parameter parsing: a bad path parameter is a 422."""
    application, _, _ = sync_app
    with TestClient(application) as client:
        assert client.get("/authors/not-a-number").status_code == 422
