"""db_session and the unit of work: sessions, per-database caches, flush, commit, rollback."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import random
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from typing import Any, TypeVar, overload

from . import unitofwork
from ._impl import (
    CREATED,
    DELETED,
    GONE,
    LOADED,
    MODIFIED,
    CacheBase,
    SessionBase,
    current_session,
    current_task,
    enter_session,
    exit_session,
    only_mapped,
    read_rows,
    record_undo_all,
    track,
)
from .debug import pop_sql_debug, push_sql_debug
from .exceptions import (
    CacheIndexError,
    CommitException,
    CommitOutcomeUnknown,
    DatabaseSessionIsOver,
    ObjectNotFound,
    OrmRuntimeWarning,
    PartialCommitException,
    PendingChangesError,
    PendingRollbackError,
    ReadOnlySessionError,
    RollbackException,
    TransactionError,
    TransactionIntegrityError,
)
from .identity import flat_key
from .steps import NO_STEPS, AsyncRequired, Result, Steps, run_async, run_sync

__all__ = [
    "DBSessionManager",
    "acommit",
    "active_session",
    "aflush",
    "arollback",
    "commit",
    "db_session",
    "expunge",
    "expunge_all",
    "flush",
    "require_session",
    "rollback",
    "savepoint",
    "with_transaction",
]

F = TypeVar("F", bound=Callable[..., Any])


def active_session() -> Session | None:
    """The session of the current thread or task, or None."""
    session = current_session.get()
    if session is not None and session.owner is not None and session.owner is not current_task():
        return None
    return session


def require_session() -> Session:
    """The current session; TransactionError when there is none."""
    session = active_session()
    if session is None:
        raise TransactionError("db_session is required when working with the database")
    return session


def _exception_matcher(spec: Any) -> Callable[[BaseException], bool]:
    """A predicate from a list/tuple of exception classes, one class, or a callable."""
    if isinstance(spec, type) and issubclass(spec, BaseException):
        classes: tuple[type, ...] = (spec,)
    elif callable(spec):
        return spec  # type: ignore[no-any-return]
    else:
        classes = tuple(spec)
    return lambda exc: isinstance(exc, classes)


class Session(SessionBase):
    """One outermost db_session: its options, identity maps and per-database caches."""

    caches: dict[Any, SessionCache]
    manager: DBSessionManager
    #: sql_debug tokens of open context-manager entries with sql_debug/show_values (made on first use)
    debug_tokens: list[Any] | None = None
    #: the error of a failed flush or commit: the session refuses work until it is rolled back
    failure: BaseException | None = None
    #: whether a COMMIT of this session applied writes (then ``retry`` must not re-run it)
    committed_writes: bool = False
    #: the open ``savepoint()`` blocks, innermost last (None until the first one)
    savepoints: list[Any] | None = None

    def open_savepoints(self) -> list[Any]:
        """The stack of open savepoints (made on first use)."""
        stack = self.savepoints
        if stack is None:
            stack = self.savepoints = []
        return stack

    # -- read-only views ---------------------------------------------------------------------

    def _pending(self, status: int) -> tuple[Any, ...]:
        return tuple(obj for cache in self.caches.values() for obj in cache.dirty if obj._status_ == status)

    @property
    def new(self) -> tuple[Any, ...]:
        """Objects created and not inserted yet, in the order they were made."""
        return self._pending(CREATED)

    @property
    def dirty(self) -> tuple[Any, ...]:
        """Loaded objects with changes not flushed yet, in the order they were first changed."""
        return self._pending(MODIFIED)

    @property
    def deleted(self) -> tuple[Any, ...]:
        """Objects marked for deletion whose DELETE is not sent yet."""
        return self._pending(DELETED)

    @property
    def in_transaction(self) -> bool:
        """Whether a database transaction of this session is open."""
        return any(cache.in_transaction for cache in self.caches.values())

    def _refuse_in_savepoint(self, what: str) -> None:
        if self.savepoints:
            raise TransactionError(
                f"{what} cannot be called inside a savepoint() block: leave the block first "
                "(an exception leaving it rolls back to the savepoint)"
            )

    def cache_for(self, db: Any) -> SessionCache:
        """The cache of ``db`` in this session, created on first use."""
        if self.failure is not None:
            raise self.pending_rollback_error()
        cache = self.caches.get(db)
        if cache is None:
            cache = self.caches[db] = SessionCache(self, db)
        return cache

    def refuse_if_failed(self) -> None:
        """PendingRollbackError naming the original failure, when a flush or commit of this session failed."""
        if self.failure is not None:
            raise self.pending_rollback_error()

    def pending_rollback_error(self) -> PendingRollbackError:
        failure = self.failure
        assert failure is not None
        return PendingRollbackError(
            f"This session failed and refuses all work until it is rolled back: {_describe(failure)}. "
            "Call rollback() to go on (leaving the db_session block also rolls back)",
            failure,
        )

    def flush_steps(self) -> Steps[None]:
        """Send pending changes of every database."""
        self.refuse_if_failed()
        for cache in list(self.caches.values()):
            yield from cache.flush_steps()

    def commit_steps(self, caches: list[SessionCache] | None = None) -> Steps[None]:
        """Flush all (or ``caches``), commit the first database, then the others; objects stay usable.

        A COMMIT that fails ends the transactions not yet committed and fails the session.
        """
        self.refuse_if_failed()
        self._refuse_in_savepoint("commit()")
        if caches is None:
            caches = list(self.caches.values())
        if not caches:
            return
        self._refuse_while_flushing("commit()")
        yield from self._ready_steps(caches)
        # the events belong to a transaction: a commit with nothing to write and no transaction has none
        active = [cache for cache in caches if cache.in_transaction or cache.dirty or cache.m2m]
        for cache in caches:
            try:
                if cache in active:
                    cache.fire("before_commit")
            except GeneratorExit:
                raise
            except BaseException as exc:
                yield from self.fail_steps(exc)
                raise
            # the COMMIT follows at once: what its flush saved is folded into ``undo`` only if it fails
            yield from cache.flush_steps(keep_saving=True)
        committed: list[Any] = []
        for cache in caches:
            try:
                yield cache, "commit_db", ()
            except GeneratorExit:
                raise
            except BaseException as exc:
                rest = [other.db for other in caches if other is not cache and other.db not in committed]
                yield from self.fail_steps(exc)
                error = _commit_error(exc, cache.db, committed, rest)
                if error is exc:
                    raise
                raise error from exc
            committed.append(cache.db)
        for cache in active:
            cache.fire("after_commit")

    def rollback_steps(self, caches: list[SessionCache] | None = None) -> Steps[None]:
        """Roll every database (or ``caches``) back and detach their objects; clears a failure."""
        self._refuse_in_savepoint("rollback()")
        self._refuse_while_flushing("rollback()")
        if caches is None or self.failure is not None:
            caches = list(self.caches.values())
        yield from self._ready_steps(caches)
        if len(caches) == len(self.caches):
            self.track_mapped()
            self.maps.clear()
            self.caches.clear()
        else:
            for cache in caches:
                self.caches.pop(cache.db, None)
                for entity in cache.db.entities.values():
                    track(self.maps.pop(entity, {}).values())
        errors = yield from self._end_steps(caches, "the session was rolled back")
        self.failure = None
        if errors:
            raise RollbackException(f"Rollback failed: {_describe(errors[0])}", list(errors)) from errors[0]

    def fail_steps(self, failure: BaseException) -> Steps[None]:
        """After a failed flush or commit: end every open transaction uncommitted; refuse work until rollback()."""
        self.failure = failure
        self.track_mapped()
        self.maps.clear()
        self.savepoints = None
        # the caches stay (closed) so that leaving the block still finds a session to roll back
        errors = yield from self._end_steps(list(self.caches.values()), "the session was rolled back")
        for error in errors:
            failure.add_note(
                f"nextorm: the rollback that followed failed ({_describe(error)}); its connection was "
                "closed, which ends the transaction without committing it"
            )

    def _end_steps(self, caches: list[SessionCache], reason: str) -> Steps[list[Exception]]:
        """Roll back and detach ``caches``, undoing in memory what their transactions changed."""
        errors: list[Exception] = []
        interrupt: BaseException | None = None
        ended = []
        for cache in caches:
            cache.over = reason
            cache.undo_changes()
            if cache.in_transaction:
                ended.append(cache)
            try:
                yield cache, "close_db", (True,)
            except GeneratorExit:
                raise
            except Exception as exc:
                errors.append(exc)
            except BaseException as exc:
                interrupt = interrupt or exc
        if interrupt is not None:
            raise interrupt
        for cache in ended:
            try:
                cache.fire("after_rollback")
            except Exception as exc:
                if self.failure is None:
                    raise
                self.failure.add_note(f"nextorm: an after_rollback handler failed: {_describe(exc)}")
        return errors

    def close_steps(self) -> Steps[None]:
        """End the session: release connections; objects keep their loaded values."""
        caches = list(self.caches.values())
        try:
            yield from self._ready_steps(caches)
        except BaseException:
            self.track_mapped()
            raise
        self.caches.clear()
        try:
            for cache in caches:
                if cache.in_transaction:
                    cache.undo_changes()
                yield cache, "close_db", (cache.in_transaction,)
        finally:
            self.release_mapped(caches)

    def release_mapped(self, caches: list[SessionCache]) -> None:
        """Let the objects of the identity maps go as the session ends.

        When nothing but its map holds any of them (the application kept none), the maps are
        dropped and every object is freed at once by reference counting: the cyclic GC never has
        to walk a closed session. Otherwise the maps stay, so that a loaded reference of a kept
        object still reads the session's object, and their objects go back to the cyclic GC
        (``track_mapped``). The unique indexes of a closed session serve no lookup: dropped.
        """
        for cache in caches:
            cache.forget_indexes()
        if only_mapped(self._distinct_maps()):
            self.maps.clear()  # the last references to the maps: their objects are freed here
        else:
            self.track_mapped()

    def track_mapped(self) -> None:
        """Give the objects of the identity maps back to the cyclic GC (``track``): they stop being
        held by a live session, and a closed session's maps and objects hold each other in a cycle."""
        for imap in self._distinct_maps():
            track(imap.values())

    def _distinct_maps(self) -> list[dict[Any, Any]]:
        """The identity maps, each once (the entities of one hierarchy share their root's)."""
        return list({id(imap): imap for imap in self.maps.values()}.values())

    def _refuse_while_flushing(self, what: str) -> None:
        """An entity hook runs inside a flush: ending the transaction there would half-write it."""
        for cache in self.caches.values():
            if cache.flushing:
                raise TransactionError(
                    f"{what} cannot be called while changes are being flushed (from an entity hook)"
                )

    @staticmethod
    def _ready_steps(caches: list[Any]) -> Steps[None]:
        """Before any change of state: a blocking call on an async database stops here."""
        for cache in caches:
            if cache.is_async:
                yield cache, "ready", ()

    def flush(self) -> None:
        run_sync(self.flush_steps(), "await aflush()")

    def commit(self) -> None:
        run_sync(self.commit_steps(), "await acommit()")

    def rollback(self) -> None:
        run_sync(self.rollback_steps(), "await arollback()")

    def close(self) -> None:
        run_sync(self.close_steps(), "async with db_session")

    async def aflush(self) -> None:
        await run_async(self.flush_steps())

    async def acommit(self) -> None:
        await run_async(self.commit_steps())

    async def arollback(self) -> None:
        await run_async(self.rollback_steps())

    async def aclose(self) -> None:
        await run_async(self.close_steps())


class EntityProxy:
    """A reference to an entity object by class and primary key, usable in any later session."""

    __slots__ = ("_entity_", "_pk_")

    def __init__(self, obj: Any) -> None:
        entity = type(obj)
        pk = obj._pk_raw_()
        if pk is None:
            if obj._status_ >= DELETED or not obj._cache_.is_alive:
                raise ValueError(
                    f"Cannot make a proxy for {entity.__name__} object: primary key is not specified"
                )
            obj.get_pk()  # flushes the object to learn its key
            pk = obj._pk_raw_()
        object.__setattr__(self, "_entity_", entity)
        object.__setattr__(self, "_pk_", pk)

    def _get_object(self) -> Any:
        require_session()
        return self._entity_[self._pk_]

    def get(self) -> Any:
        """The object in the current session (ObjectNotFound when its row is gone)."""
        return self._get_object()

    def exists(self) -> bool:
        """Whether the row still exists."""
        try:
            self._get_object()
        except ObjectNotFound:
            return False
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_object(), name, value)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, EntityProxy):
            return self._entity_ is other._entity_ and self._pk_ == other._pk_
        if isinstance(other, self._entity_):
            return self._pk_ == other._pk_raw_()
        return NotImplemented

    def __ne__(self, other: Any) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash((self._entity_, self._pk_))

    def __repr__(self) -> str:
        pk = flat_key(self._entity_, self._pk_)  # one value per key column, as get_pk() gives
        shown = ",".join(map(repr, pk))
        return f"<EntityProxy({self._entity_.__name__}[{shown}])>"


def _holds(other: Any, obj: Any, key: Any, value: Any) -> bool:
    """Whether ``other`` (found in a unique index under ``value``) really holds it, so ``obj`` cannot.

    An index entry can be stale: a value refreshed from the database replaces the one indexed.
    """
    return (
        other is not None and other is not obj and other._status_ < DELETED and key.value_of(other) == value
    )


def _describe(exc: BaseException) -> str:
    text = " ".join(str(arg) for arg in exc.args)
    return text if isinstance(exc, TransactionError) else f"{type(exc).__name__}: {text}"


def _commit_error(exc: BaseException, db: Any, committed: list[Any], rest: list[Any]) -> BaseException:
    """The error to raise for a COMMIT on ``db`` that raised ``exc`` after ``committed`` committed.

    ``rest`` were rolled back, not committed. Interrupts (KeyboardInterrupt, SystemExit, a
    cancelled task) propagate as themselves, with a note of what is known.
    """
    before = f"Committed {', '.join(map(repr, committed))}; " if committed else ""
    after = f"; not committed: {', '.join(map(repr, rest))}" if rest else ""
    if not isinstance(exc, Exception):
        exc.add_note(
            f"nextorm: {before}COMMIT on {db!r} was interrupted: whether it took effect is unknown{after}"
        )
        return exc
    if isinstance(exc, CommitOutcomeUnknown):
        if not committed and not rest:
            return exc
        return CommitOutcomeUnknown(
            f"{before}{exc}{after}", exc.exceptions, database=db, committed=list(committed)
        )
    if committed:
        return PartialCommitException(
            f"{before}failed to commit {db!r} ({_describe(exc)}){after}",
            [exc],
            committed=list(committed),
            failed=[db, *rest],
        )
    if isinstance(exc, TransactionIntegrityError):
        return exc  # a constraint checked at COMMIT (deferred foreign key): the clearest error is its own
    return CommitException(f"Commit failed and nothing was committed: {_describe(exc)}{after}", [exc])


class SessionCache(CacheBase):
    """What one session holds for one database: connection, transaction, dirty queue."""

    def __init__(self, session: Session, db: Any) -> None:
        super().__init__(session, session.manager.strict)
        self.db = db
        self.provider = db._provider_or_fail()
        #: whether IO goes through the provider's awaitable methods (an AsyncDatabase)
        self.is_async = self.provider.is_async
        self.conn: Any = None
        self.in_transaction = False
        self.readonly = session.manager.readonly
        # a readonly session reads one snapshot in a READ ONLY transaction where the database has them
        self.immediate = session.manager.immediate or (self.readonly and self.provider.readonly_transactions)
        self._unique: dict[Any, dict[Any, Any]] = {}
        #: objects loaded and not yet in the unique indexes, with their entity: indexed when the
        #: indexes are next read, so a load that nothing checks against costs no indexing
        self._unlearned: list[tuple[tuple[Any, ...], Any]] = []
        self.new_ids: dict[Any, int] = {}
        #: pending many-to-many changes: primary collection attribute -> (added, removed) links
        self.m2m: dict[Any, tuple[dict[Any, None], dict[Any, None]]] = {}
        self.flushing = False
        #: bumped by every flush and raw write, so a fetched query result knows it may be stale
        self.generation = 0
        #: objects whose statements ran in the open transaction: (status, earlier values, written bits)
        self.undo: dict[Any, tuple[int, dict[int, Any] | None, int]] = {}
        #: (object, status, earlier values, written bits) saved by the flush under way
        self.saving: list[tuple[Any, int, dict[int, Any] | None, int]] = []
        #: why the cache is closed, for the errors of objects used afterwards
        self.over = "the database session is over"
        #: the handlers registered with ``db.on()``
        self.listeners = db._listeners_
        #: what objects expunged from this cache belong to (made on first use)
        self.detached: DetachedCache | None = None

    def fire(self, event: str) -> None:
        """Call the handlers of ``event`` registered on this database with the session."""
        if self.listeners.handlers:
            self.listeners.fire(event, self.session)

    def _began(self) -> None:
        """A transaction began: set the open savepoints in it, then tell the after_begin handlers."""
        if self.session.savepoints:
            for point in self.session.savepoints:
                self.set_savepoint(point)
        self.fire("after_begin")

    async def _abegan(self) -> None:
        if self.session.savepoints:
            for point in self.session.savepoints:
                await self.aset_savepoint(point)
        self.fire("after_begin")

    def set_savepoint(self, point: Any) -> None:
        """Set the savepoint ``point`` in this database's open transaction."""
        self.provider.run(self.conn, self.provider.dialect.savepoint_sql(point.name))
        point.caches.append(self)

    async def aset_savepoint(self, point: Any) -> None:
        await self.provider.arun(self.conn, self.provider.dialect.savepoint_sql(point.name))
        point.caches.append(self)

    def detach(self, obj: Any) -> None:
        """Take ``obj`` out of this session: identity map, indexes, queues; it keeps its loaded values."""
        pk = obj._pk_raw_()
        if pk is not None:
            imap = self.session.maps.get(type(obj))
            if imap is not None and imap.get(pk) is obj:
                del imap[pk]
                track((obj,))
        self.forget_unique(obj)
        self.dirty.pop(obj, None)
        self.settle_saved()
        self.undo.pop(obj, None)
        detached = self.detached
        if detached is None:
            detached = self.detached = DetachedCache(self)
        obj._cache_ = detached

    # -- IO requests (run_sync calls these; run_async awaits the ``a``-prefixed twins) ------------

    def connection(self) -> Any:
        """The session's connection, opened on first use; an immediate session also begins here."""
        conn = self.conn
        if conn is None:
            if not self.is_alive:
                self.session.refuse_if_failed()
                raise TransactionError("This session cache was closed: the session was rolled back or ended")
            conn = self.conn = self.provider.acquire(self.readonly)
        if self.immediate and not self.in_transaction:
            self.provider.begin(
                conn, immediate=True, serializable=self.session.manager.serializable, readonly=self.readonly
            )
            self.in_transaction = True
            self._began()
        return conn

    def ready(self) -> None:
        """Nothing: the request a step sequence makes before it changes any state."""

    async def aready(self) -> None:
        """Nothing, awaited."""

    def readonly_error(self, what: str) -> ReadOnlySessionError:
        """The error of a write in a readonly session; ``what`` names the write."""
        return ReadOnlySessionError(f"Cannot {what}: the db_session is readonly (db_session(readonly=True))")

    def begin(self, sql: str = "") -> None:
        """Start a write transaction unless one is open (``sql`` is the write that needs it)."""
        if self.readonly:
            raise self.readonly_error(f"run {sql!r}" if sql else f"write to or lock rows of {self.db!r}")
        conn = self.connection()
        if not self.in_transaction:
            self.provider.begin(conn, immediate=True, serializable=self.session.manager.serializable)
            self.in_transaction = True
            self._began()

    def query(self, sql: str, params: Any = ()) -> Result:
        """Run a statement (a read, or anything in an open transaction)."""
        return self.provider.run(self.connection(), sql, params)

    def read(self, sql: str, params: Any) -> list[Any]:
        """``query(sql, params).rows``: the rows of a read run directly (blocking IO only)."""
        return read_rows(self.provider, self.connection(), sql, params)

    def write(self, sql: str, params: Any = ()) -> Result:
        """Run a statement inside the write transaction."""
        self.begin(sql)
        return self.provider.run(self.conn, sql, params)

    def write_many(self, sql: str, rows: list[Any]) -> int:
        """Run a statement for each row inside the write transaction; the total row count."""
        self.begin(sql)
        return self.provider.executemany(self.conn, sql, rows)

    def insert_key(self, sql: str, row: Any, pk_column: str | None) -> Any:
        """INSERT one row; the generated key."""
        self.begin(sql)
        return self.provider.insert_returning(self.conn, sql, row, pk_column)

    def insert_keys(self, sql: str, rows: list[Any], pk_column: str) -> list[Any]:
        """INSERT several rows; their generated keys in order."""
        self.begin(sql)
        return self.provider.insert_many_returning(self.conn, sql, rows, pk_column)

    def open_stream(self, sql: str, params: Any) -> Any:
        """Start a SELECT read in batches (a server-side cursor where the database has them)."""
        conn = self.connection()
        return self.provider.open_stream(conn, sql, params, self.in_transaction)

    def fetch_stream(self, cursor: Any, size: int) -> list[Any]:
        """Up to ``size`` more rows of a stream."""
        return self.provider.fetch_stream(cursor, size)

    def close_stream(self, cursor: Any) -> None:
        """Release a stream's cursor."""
        self.provider.close_stream(cursor)

    async def aopen_stream(self, sql: str, params: Any) -> Any:
        conn = await self.aconnection()
        return await self.provider.aopen_stream(conn, sql, params, self.in_transaction)

    async def afetch_stream(self, cursor: Any, size: int) -> list[Any]:
        return await self.provider.afetch_stream(cursor, size)

    async def aclose_stream(self, cursor: Any) -> None:
        await self.provider.aclose_stream(cursor)

    def commit_db(self) -> None:
        """Commit this database's transaction; a failure ends it (see ``_commit_failed``)."""
        if self.in_transaction:
            try:
                self.provider.commit(self.conn)
            except BaseException as exc:
                known = self._commit_failed(exc)
                if known:
                    self._close_quietly()
                else:
                    self.provider.discard(self._detach())
                error = self._commit_error(exc, known)
                if error is exc:
                    raise
                raise error from exc
            self._committed()

    def close_db(self, rollback: bool) -> None:
        """Detach every object of this cache and give the connection back."""
        conn = self._detach()
        if conn is None:
            return
        try:
            if rollback and self.in_transaction:
                self.provider.rollback(conn)
        except BaseException:
            self.provider.discard(conn)
            raise
        finally:
            self.in_transaction = False
        self.provider.release(conn)

    def _close_quietly(self) -> None:
        """Roll back and release; a failing rollback closes the connection, which ends the transaction."""
        try:
            self.close_db(True)
        except Exception:
            pass  # the commit's own error is the one to report

    def closed_error(self, what: str) -> TransactionError:
        """The error for ``what`` ("Cannot load attribute Person[1].name") on an object of this closed cache."""
        if self.session.failure is not None:
            return self.session.pending_rollback_error()
        return DatabaseSessionIsOver(f"{what}: {self.over}")

    def _detach(self) -> Any:
        """Mark the cache closed and take its connection away from it."""
        self.is_alive = False
        conn, self.conn = self.conn, None
        return conn

    def _commit_failed(self, exc: BaseException) -> bool:
        """After a failed COMMIT: whether it certainly did not apply (an interrupt never tells)."""
        return isinstance(exc, Exception) and self.provider.commit_not_applied(self.conn, exc)

    def _commit_error(self, exc: BaseException, known: bool) -> BaseException:
        """``exc`` itself, or CommitOutcomeUnknown when the COMMIT may have applied."""
        self.in_transaction = False
        if known or not isinstance(exc, Exception):
            return exc
        return CommitOutcomeUnknown(
            f"The outcome of COMMIT on {self.db!r} is unknown ({_describe(exc)}): the connection failed "
            "before the database answered, so the writes may or may not be stored. Check before doing "
            "the work again",
            [exc],
            database=self.db,
        )

    def _committed(self) -> None:
        self.in_transaction = False
        self.undo.clear()
        self.saving.clear()
        self.session.committed_writes = True

    def undo_changes(self) -> None:
        """The transaction is rolled back: objects show again the values it found in the database.

        Columns written by its completed flushes get their earlier values back (or become unloaded
        when the earlier value was never read), and objects deleted by them come back. Changes not
        flushed yet keep their values, as Pony keeps them on a detached object.
        """
        self.settle_saved()
        for obj, (status, orig, wbits) in self.undo.items():
            if status == CREATED or obj._status_ == CREATED:
                continue
            _restore(obj, orig, wbits & ~obj._wbits_)
            if obj._status_ == GONE:
                obj._status_ = LOADED
        self.undo.clear()

    def record_undo(self, obj: Any, status: int, orig: dict[int, Any] | None, wbits: int) -> None:
        """A flushed statement of ``obj``: remember how to undo it if the transaction rolls back."""
        self.settle_saved()
        record_undo_all(self.undo, ((obj, status, orig, wbits),))

    def settle_saved(self) -> None:
        """Fold into ``undo`` what a finished flush left in ``saving`` (``flush_steps(keep_saving=True)``)."""
        if self.saving and not self.flushing:
            record_undo_all(self.undo, self.saving)
            self.saving.clear()

    def unsave_failed_flush(self) -> None:
        """A flush failed: objects it had saved are pending again, as before it."""
        for obj, status, orig, wbits in reversed(self.saving):
            obj._status_ = status
            obj._wbits_ |= wbits
            if orig:
                obj._orig_ = {**orig, **(obj._orig_ or {})}
        self.saving.clear()

    async def aconnection(self) -> Any:
        conn = self.conn
        if conn is None:
            if not self.is_alive:
                self.session.refuse_if_failed()
                raise TransactionError("This session cache was closed: the session was rolled back or ended")
            conn = self.conn = await self.provider.aacquire(self.readonly)
        if self.immediate and not self.in_transaction:
            await self.provider.abegin(
                conn, immediate=True, serializable=self.session.manager.serializable, readonly=self.readonly
            )
            self.in_transaction = True
            await self._abegan()
        return conn

    async def abegin(self, sql: str = "") -> None:
        if self.readonly:
            raise self.readonly_error(f"run {sql!r}" if sql else f"write to or lock rows of {self.db!r}")
        conn = await self.aconnection()
        if not self.in_transaction:
            await self.provider.abegin(conn, immediate=True, serializable=self.session.manager.serializable)
            self.in_transaction = True
            await self._abegan()

    async def aquery(self, sql: str, params: Any = ()) -> Result:
        return await self.provider.arun(await self.aconnection(), sql, params)

    async def awrite(self, sql: str, params: Any = ()) -> Result:
        await self.abegin(sql)
        return await self.provider.arun(self.conn, sql, params)

    async def awrite_many(self, sql: str, rows: list[Any]) -> int:
        await self.abegin(sql)
        return await self.provider.aexecutemany(self.conn, sql, rows)

    async def ainsert_key(self, sql: str, row: Any, pk_column: str | None) -> Any:
        await self.abegin(sql)
        return await self.provider.ainsert_returning(self.conn, sql, row, pk_column)

    async def ainsert_keys(self, sql: str, rows: list[Any], pk_column: str) -> list[Any]:
        await self.abegin(sql)
        return await self.provider.ainsert_many_returning(self.conn, sql, rows, pk_column)

    async def acommit_db(self) -> None:
        if self.in_transaction:
            try:
                await self.provider.acommit(self.conn)
            except BaseException as exc:
                known = self._commit_failed(exc)
                if known:
                    try:
                        await self.aclose_db(True)
                    except Exception:
                        pass  # the commit's own error is the one to report
                else:
                    await self.provider.adiscard(self._detach())
                error = self._commit_error(exc, known)
                if error is exc:
                    raise
                raise error from exc
            self._committed()

    async def aclose_db(self, rollback: bool) -> None:
        conn = self._detach()
        if conn is None:
            return
        try:
            if rollback and self.in_transaction:
                await self.provider.arollback(conn)
        except BaseException:
            await self.provider.adiscard(conn)
            raise
        finally:
            self.in_transaction = False
        await self.provider.arelease(conn)

    # -- identity -------------------------------------------------------------------------------

    def identity_map(self, entity: Any) -> dict[Any, Any]:
        """The pk -> object map of ``entity`` in this session."""
        maps = self.session.maps
        imap = maps.get(entity)
        if imap is None:
            root = entity._root_
            # one map per hierarchy: Person[1] finds the Student with key 1
            imap = maps[entity] = {} if root is entity else self.identity_map(root)
        return imap

    def register_new(self, obj: Any, pk: Any) -> None:
        """Put a new object in the maps and indexes; CacheIndexError on a clash."""
        entity = type(obj)
        if pk is not None:
            imap = self.identity_map(entity)
            other = imap.get(pk)
            if other is not None and other._status_ < GONE:
                shown = ", ".join(map(str, pk)) if isinstance(pk, tuple) else pk
                raise CacheIndexError(
                    f"Cannot create {entity.__name__}: instance with primary key {shown} already exists"
                )
        for key in entity._unique_keys_:
            value = key.value_of(obj)
            if value is not None:
                index = self.unique.setdefault(key, {})
                other = index.get(value)
                if _holds(other, obj, key, value):
                    if len(key.attrs) == 1:
                        raise CacheIndexError(
                            f"Cannot create {entity.__name__}: value {value!r} for key {key.name} already exists"
                        )
                    raise CacheIndexError(
                        f"Cannot create {entity.__name__}: value {value} for composite key {key.name} already exists"
                    )
        if pk is not None:
            self.identity_map(entity)[pk] = obj
        for key in entity._unique_keys_:
            value = key.value_of(obj)
            if value is not None:
                self.unique.setdefault(key, {})[value] = obj

    def _unique_changes(self, obj: Any, values: dict[Any, Any]) -> list[tuple[dict[Any, Any], Any, Any]]:
        """How the unique indexes change if ``obj`` took ``values``; CacheIndexError on a clash."""
        changes = []
        keys = {id(key): key for attr in values for key in attr.unique_keys}
        for key in keys.values():
            index = self.unique.setdefault(key, {})
            old_value = key.value_of(obj)
            new_value = key.value_with(obj, values)
            if new_value is not None and new_value != old_value:
                other = index.get(new_value)
                if _holds(other, obj, key, new_value):
                    if len(key.attrs) == 1:
                        raise CacheIndexError(
                            f"Cannot update {key.attrs[0].qualname}: {other!r} with key {new_value} already exists"
                        )
                    raise CacheIndexError(
                        f"Cannot update {obj!r}: composite key {key.name} with value {new_value} already exists for {other!r}"
                    )
            changes.append((index, old_value, new_value))
        return changes

    def check_unique(self, obj: Any, values: dict[Any, Any]) -> None:
        """Raise CacheIndexError if ``obj`` taking ``values`` would clash with another object."""
        if values:
            self._unique_changes(obj, values)

    def update_unique(self, obj: Any, attr: Any, old: Any, new: Any) -> None:
        """Move ``obj`` in the unique indexes that contain ``attr``; CacheIndexError on a clash."""
        for index, old_value, new_value in self._unique_changes(obj, {attr: new}):
            if old_value is not None and index.get(old_value) is obj:
                del index[old_value]
            if new_value is not None:
                index[new_value] = obj

    def forget_unique(self, obj: Any) -> None:
        """Drop ``obj`` from the unique indexes (it was deleted)."""
        for key in type(obj)._unique_keys_:
            index = self.unique.get(key)
            if index:
                value = key.value_of(obj)
                if value is not None and index.get(value) is obj:
                    del index[value]

    @property
    def unique(self) -> dict[Any, dict[Any, Any]]:
        """The unique indexes: key -> {value: object}, every loaded object in them."""
        if self._unlearned:
            self._learn_loaded()
        return self._unique

    @unique.setter
    def unique(self, indexes: dict[Any, dict[Any, Any]]) -> None:
        # indexes restored (a savepoint's) or emptied: what was loaded since is left out, as it was
        self._unique = indexes
        self._unlearned = []

    def forget_indexes(self) -> None:
        """Drop the unique indexes (the session is over: nothing looks an object up in them)."""
        self._unique = {}
        self._unlearned = []

    def _learn_loaded(self) -> None:
        """Put the objects loaded since the indexes were last read in them, in the order loaded
        (``learn_unique`` lists them)."""
        unlearned, self._unlearned = self._unlearned, []
        indexes = self._unique
        for objects, entity in unlearned:
            for key in entity._unique_keys_:
                index = indexes.setdefault(key, {})
                value_of = key.attrs[0].get_raw if len(key.attrs) == 1 else key.value_of
                for obj in objects:
                    value = value_of(obj)
                    if value is not None:
                        other = index.get(value)
                        if other is None or other is obj or not _holds(other, obj, key, value):
                            index[value] = obj

    # -- unit of work ---------------------------------------------------------------------------

    def flush_steps(self, only: list[Any] | None = None, keep_saving: bool = False) -> Steps[None]:
        """Steps sending pending INSERT/UPDATE/DELETE (of ``only`` these objects): the unit of work.

        With nothing pending (every query's autoflush, mostly) they are ``NO_STEPS``, after the
        check the unit of work makes first, so a caller can skip running them. With
        ``keep_saving``, what the flush saved stays in ``saving`` for a COMMIT that follows at once
        (``settle_saved`` folds it into ``undo`` wherever ``undo`` is used before the COMMIT).
        """
        if only is None and not self.dirty and not self.m2m:
            if not self.flushing:
                self.session.refuse_if_failed()
            return NO_STEPS
        return unitofwork.flush_steps(self, only, keep_saving)

    def flush(self) -> None:
        """Send pending INSERT/UPDATE/DELETE now (queries and loads do it by themselves)."""
        run_sync(self.flush_steps(), "await aflush()")

    autoflush = flush


def _restore(obj: Any, orig: dict[int, Any] | None, wbits: int) -> None:
    """Give the columns of ``obj`` in ``wbits`` their values from before (unloaded where never read)."""
    for attr in type(obj)._columns_:
        if wbits >> attr.index & 1:
            if orig is not None and attr.index in orig:
                attr.set_raw(obj, orig[attr.index])
            else:
                attr.clear_raw(obj)


class DetachedCache(CacheBase):
    """What objects taken out of a session belong to: loaded values stay readable, the rest raises."""

    def __init__(self, cache: SessionCache) -> None:
        super().__init__(cache.session, cache.strict)
        self.is_alive = False
        self.db = cache.db
        self.is_async = cache.is_async
        self.over = "the object was expunged from its session"

    def closed_error(self, what: str) -> DatabaseSessionIsOver:
        return DatabaseSessionIsOver(f"{what}: {self.over}")


# -- savepoints ------------------------------------------------------------------------------------


class savepoint:
    """``with savepoint():`` / ``async with savepoint():``: a nested transaction inside a db_session.

    Leaving the block normally releases it; an exception rolls the databases *and* the session's
    objects back to where the block began, then propagates. A flush that fails inside is rolled
    back to the savepoint only: the session stays usable.
    """

    __slots__ = ("point",)

    def __init__(self) -> None:
        self.point: Any = None

    def __enter__(self) -> savepoint:
        self.point = run_sync(unitofwork.savepoint_begin_steps(require_session()), "async with savepoint()")
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            run_sync(unitofwork.savepoint_release_steps(self.point), "async with savepoint()")
        else:
            run_sync(unitofwork.savepoint_rollback_steps(self.point), "async with savepoint()")

    async def __aenter__(self) -> savepoint:
        self.point = await run_async(unitofwork.savepoint_begin_steps(require_session()))
        return self

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            await run_async(unitofwork.savepoint_release_steps(self.point))
        else:
            await run_async(unitofwork.savepoint_rollback_steps(self.point))


# -- the db_session manager -------------------------------------------------------------------


class DBSessionManager:
    """``db_session``: context manager (sync and async) and decorator with Pony's options."""

    #: what enter_session makes for a new outermost session
    session_type = Session

    def __new__(cls, **options: Any) -> DBSessionManager:
        plain = (
            not options.get("retry")
            and options.get("sql_debug") is None
            and options.get("show_values") is None
        )
        return super().__new__(_PlainSessionManager if plain and cls is DBSessionManager else cls)

    def __init__(
        self,
        retry: int = 0,
        immediate: bool = False,
        ddl: bool = False,
        serializable: bool = False,
        strict: bool = False,
        optimistic: bool = True,
        retry_exceptions: Any = (TransactionError,),
        allowed_exceptions: Any = (),
        sql_debug: bool | None = None,
        show_values: bool | None = None,
        retry_delay: float = 0.01,
        retry_backoff: float = 2.0,
        retry_max_delay: float = 1.0,
        readonly: bool = False,
    ) -> None:
        if readonly and ddl:
            raise TypeError("'readonly' and 'ddl' parameters of db_session cannot be used together")
        for name, number in (
            ("retry_delay", retry_delay),
            ("retry_backoff", retry_backoff),
            ("retry_max_delay", retry_max_delay),
        ):
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not number >= 0:
                raise TypeError(
                    f"'{name}' parameter of db_session must be a non-negative number. Got: {number!r}"
                )
        if retry_backoff < 1:
            raise TypeError(
                f"'retry_backoff' parameter of db_session must be at least 1. Got: {retry_backoff!r}"
            )
        if retry != 0:
            if type(retry) is not int:
                raise TypeError(
                    f"'retry' parameter of db_session must be of integer type. Got: {type(retry)}"
                )
            if retry < 0:
                raise TypeError(f"'retry' parameter of db_session must not be negative. Got: {retry}")
            if ddl:
                raise TypeError("'ddl' and 'retry' parameters of db_session cannot be used together")
        for name, spec in (
            ("retry_exceptions", retry_exceptions),
            ("allowed_exceptions", allowed_exceptions),
        ):
            if not callable(spec) and not isinstance(spec, (list, tuple, set, frozenset)):
                raise TypeError(
                    f"'{name}' parameter of db_session must be a list of exception classes or a callable. Got: {spec!r}"
                )
        if not callable(allowed_exceptions) and not callable(retry_exceptions):
            for exc in allowed_exceptions:
                if exc in retry_exceptions:
                    raise TypeError(
                        f"The same exception {exc.__name__} cannot be specified in both allowed "
                        "and retry exception lists simultaneously"
                    )
        self.retry = retry
        self.ddl = ddl
        self.serializable = serializable
        self.strict = strict
        self.optimistic = optimistic and not serializable
        self.immediate = immediate or ddl or serializable or not optimistic
        self.retry_exceptions = retry_exceptions
        self.allowed_exceptions = allowed_exceptions
        self.should_retry = _exception_matcher(retry_exceptions)
        self.is_allowed = _exception_matcher(allowed_exceptions)
        self.sql_debug = sql_debug
        self.show_values = show_values
        self.retry_delay = retry_delay
        self.retry_backoff = retry_backoff
        self.retry_max_delay = retry_max_delay
        #: the session only reads: it may run on a read replica, and every write raises ReadOnlySessionError
        self.readonly = readonly

    # For type checkers: ``@db_session`` and ``@db_session(retry=3)`` give back the function with
    # its own signature; ``db_session(...)`` with options is a configured manager.
    @overload
    def __call__(self, func: F, /) -> F: ...
    @overload
    def __call__(self, **options: Any) -> DBSessionManager: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            return self
        if len(args) > 1 or (args and kwargs):
            raise TypeError("Pass only keyword arguments to db_session or use db_session as decorator")
        if not args:
            return DBSessionManager(**kwargs)
        return self._decorate(args[0])

    def __repr__(self) -> str:
        return "db_session" if self is db_session else "<db_session manager>"

    # -- hooks of enter_session / exit_session ---------------------------------------------------

    def _check_nested_(self, session: Session) -> None:
        if self.ddl and not session.manager.ddl:
            raise TransactionError("Cannot start ddl transaction inside non-ddl transaction")
        if self.serializable and not session.manager.serializable:
            raise TransactionError(
                "Cannot start serializable transaction inside non-serializable transaction"
            )

    def _finish_(self, session: Session, exc: BaseException | None) -> None:
        """End the outermost session: commit (or roll back on a disallowed exception), release."""
        if any(cache.is_async for cache in session.caches.values()):
            _abandon_async_caches(session)
            current_session.reset(session.token)
            raise AsyncRequired(
                "An async database was used in a `with db_session` block: "
                "its commit must be awaited, use `async with db_session`"
            )
        try:
            failure = session.failure
            if failure is not None:
                _quietly(session.rollback)
                if exc is None or (exc is not failure and self._allowed(session, exc)):
                    raise _ended_after_failure(failure) from failure
            elif exc is None or self._allowed(session, exc):
                session.commit()
            else:
                _quietly(session.rollback)  # the exception in flight is the one to report
        finally:
            session.close()
            current_session.reset(session.token)

    async def _afinish_(self, session: Session, exc: BaseException | None) -> None:
        """Awaitable ``_finish_`` (for ``async with`` and decorated coroutines)."""
        try:
            failure = session.failure
            allowed = exc is None
            if not allowed and exc is not failure:
                try:
                    allowed = bool(self.is_allowed(exc))  # type: ignore[arg-type]
                except BaseException:
                    await session.arollback()
                    raise
            if failure is not None:
                await _aquietly(session.arollback)
                if allowed:
                    raise _ended_after_failure(failure) from failure
            elif allowed:
                await session.acommit()
            else:
                await _aquietly(session.arollback)  # the exception in flight is the one to report
        finally:
            await session.aclose()
            current_session.reset(session.token)

    async def _aexit_session(self, exc: BaseException | None) -> None:
        """Leave a session in a coroutine: the outermost exit commits or rolls back, awaited."""
        session = current_session.get()
        if session.depth == 1 and session.caches:
            session.depth = 0
            await session.manager._afinish_(session, exc)
        else:
            exit_session(self, None if exc is None else type(exc), exc, None)

    def _allowed(self, session: Session, exc: BaseException) -> bool:
        try:
            return bool(self.is_allowed(exc))
        except BaseException:
            session.rollback()
            raise

    # -- context manager ---------------------------------------------------------------------------

    def __enter__(self) -> Session:
        if self.retry != 0:
            raise TypeError(
                "@db_session can accept 'retry' parameter only when used as decorator and not as context manager"
            )
        session = enter_session(self)
        if self.sql_debug is not None or self.show_values is not None:
            if session.debug_tokens is None:
                session.debug_tokens = []
            session.debug_tokens.append(push_sql_debug(self.sql_debug, self.show_values))
        return session  # type: ignore[no-any-return]

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.sql_debug is None and self.show_values is None:
            exit_session(self, exc_type, exc, tb)
            return
        token = current_session.get().debug_tokens.pop()
        try:
            exit_session(self, exc_type, exc, tb)  # the COMMIT at the exit is logged as the session asked
        finally:
            pop_sql_debug(token)

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self.sql_debug is None and self.show_values is None:
            await self._aexit_session(exc)
            return
        token = current_session.get().debug_tokens.pop()
        try:
            await self._aexit_session(exc)
        finally:
            pop_sql_debug(token)

    # -- decorator ------------------------------------------------------------------------------

    def _decorate(self, func: F) -> F:
        if inspect.isgeneratorfunction(func):
            return self._decorate_generator(func)  # type: ignore[return-value]
        if inspect.isasyncgenfunction(func):
            raise TypeError(
                "@db_session cannot decorate an async generator function: open the session inside it"
            )
        if inspect.iscoroutinefunction(func):
            return self._decorate_async(func)  # type: ignore[return-value]
        manager = self

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if active_session() is not None:
                return manager._call_nested(func, args, kwargs)
            attempt = 0
            while True:
                session = enter_session(manager)
                with _debugging(manager):  # covers the COMMIT or ROLLBACK that ends the attempt
                    try:
                        result = func(*args, **kwargs)
                        session.commit()
                    except BaseException as exc:
                        if not manager._retryable(exc, session, attempt):
                            exit_session(manager, type(exc), exc, None)
                            raise
                        try:
                            session.rollback()
                        finally:
                            exit_session(manager)
                    else:
                        exit_session(manager)
                        return result
                time.sleep(manager._retry_pause(attempt))
                attempt += 1

        return wrapper  # type: ignore[return-value]

    def _decorate_generator(
        self, func: Callable[..., Generator[Any, Any, Any]]
    ) -> Callable[..., Generator[Any, Any, Any]]:
        """A generator function whose every step runs in one session, suspended while it is paused.

        The session ends (commit) when the generator finishes, and rolls back when it raises or is
        closed early. It may not pause with changes pending or a transaction open: commit() first.
        """
        for option in ("ddl", "retry", "serializable"):
            if getattr(self, option):
                raise TypeError(f"db_session with `{option}` option cannot be applied to generator function")
        manager = self

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            steps = func(*args, **kwargs)
            session: Session | None = None
            sent: Any = None
            thrown: BaseException | None = None
            while True:
                if active_session() is not None:
                    raise TransactionError(
                        "@db_session-wrapped generator cannot be used inside another db_session"
                    )
                if session is None:
                    session = enter_session(manager)
                else:
                    session.owner = current_task()
                    session.token = current_session.set(session)
                with _debugging(manager):
                    try:
                        output = steps.throw(thrown) if thrown is not None else steps.send(sent)
                        if any(c.dirty or c.m2m or c.in_transaction for c in session.caches.values()):
                            raise TransactionError(
                                "You need to manually commit() changes before suspending the generator"
                            )
                    except StopIteration as stop:
                        try:
                            session.commit()
                        except BaseException as exc:
                            exit_session(manager, type(exc), exc, None)
                            raise
                        exit_session(manager)
                        return stop.value  # type: ignore[no-any-return]
                    except BaseException as exc:
                        exit_session(manager, type(exc), exc, None)
                        raise
                current_session.reset(session.token)  # suspended until the next step
                try:
                    sent, thrown = (yield output), None
                except BaseException as exc:  # thrown in, or GeneratorExit from close()
                    sent, thrown = None, exc

        return wrapper

    def _decorate_async(self, func: Callable[..., Any]) -> Callable[..., Any]:
        manager = self

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            if active_session() is not None:
                with manager._nested(func):
                    return await func(*args, **kwargs)
            attempt = 0
            while True:
                session = enter_session(manager)
                with _debugging(manager):
                    try:
                        result = await func(*args, **kwargs)
                        await session.acommit()
                    except BaseException as exc:
                        if not manager._retryable(exc, session, attempt):
                            await manager._aexit_session(exc)
                            raise
                        try:
                            await session.arollback()
                        finally:
                            await manager._aexit_session(None)
                    else:
                        await manager._aexit_session(None)
                        return result
                await asyncio.sleep(manager._retry_pause(attempt))
                attempt += 1

        return wrapper

    def _retryable(self, exc: BaseException, session: Session, attempt: int) -> bool:
        """Whether the function is run again after ``exc``: never once any of its work was committed."""
        if attempt >= self.retry or not isinstance(exc, Exception):
            return False
        if isinstance(exc, (PartialCommitException, CommitOutcomeUnknown)):
            return False
        if not self.should_retry(exc):
            return False
        if session.committed_writes:
            exc.add_note("nextorm: not retried: this attempt already committed writes (commit() was called)")
            return False
        return True

    def _retry_pause(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1``: exponential backoff with jitter.

        The pause is drawn between half and all of ``retry_delay * retry_backoff ** attempt`` (capped
        at ``retry_max_delay``), so that sessions failing together do not retry together.
        """
        ceiling = min(self.retry_max_delay, self.retry_delay * self.retry_backoff**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _call_nested(self, func: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        with self._nested(func):
            return func(*args, **kwargs)

    @contextlib.contextmanager
    def _nested(self, func: Callable[..., Any]) -> Iterator[None]:
        """A decorated function called inside another session: Pony's checks, then plain call."""
        name = f"{func.__name__}()"
        if self.ddl:
            raise TransactionError(
                f"@db_session-decorated {name} function with `ddl` option cannot be called inside of another db_session"
            )
        if self.retry:
            warnings.warn(
                f"@db_session decorator with `retry={self.retry}` option is ignored for {name} function "
                "because it is called inside another db_session",
                OrmRuntimeWarning,
                stacklevel=5,
            )
        with _debugging(self):
            yield


class _PlainSessionManager(DBSessionManager):
    """A manager without retry or sql_debug options: enter and exit are the hot-path functions."""

    __enter__ = enter_session  # type: ignore[assignment]
    __exit__ = exit_session  # type: ignore[assignment]


def _quietly(rollback: Callable[[], None]) -> None:
    """Roll back while another error is the one to report."""
    try:
        rollback()
    except Exception:
        pass


async def _aquietly(rollback: Callable[[], Any]) -> None:
    """Awaitable ``_quietly``."""
    try:
        await rollback()
    except Exception:
        pass


def _ended_after_failure(failure: BaseException) -> PendingRollbackError:
    return PendingRollbackError(
        f"The db_session ended after a failed flush or commit that was caught inside it "
        f"({_describe(failure)}): it was rolled back, and nothing after the failure was committed",
        failure,
    )


@contextlib.contextmanager
def _debugging(manager: DBSessionManager) -> Iterator[None]:
    """The manager's sql_debug/show_values for the duration of the block."""
    if manager.sql_debug is None and manager.show_values is None:
        yield
        return
    token = push_sql_debug(manager.sql_debug, manager.show_values)
    try:
        yield
    finally:
        pop_sql_debug(token)


db_session = DBSessionManager()


def flush() -> None:
    """Send the current session's pending changes to every database it touched."""
    session = active_session()
    if session is not None:
        session.flush()


def commit() -> None:
    """Flush and commit the current session; objects stay usable."""
    session = active_session()
    if session is not None:
        session.commit()


def rollback() -> None:
    """Roll back the current session; its objects are detached."""
    session = active_session()
    if session is not None:
        session.rollback()


async def aflush() -> None:
    """Awaitable ``flush()``."""
    session = active_session()
    if session is not None:
        await session.aflush()


async def acommit() -> None:
    """Awaitable ``commit()``."""
    session = active_session()
    if session is not None:
        await session.acommit()


async def arollback() -> None:
    """Awaitable ``rollback()``."""
    session = active_session()
    if session is not None:
        await session.arollback()


def expunge(*objects: Any) -> None:
    """Take ``objects`` out of the current session: a later ``Entity[pk]`` loads a fresh object.

    An expunged object keeps its loaded values readable; loading, assigning or deleting through
    it raises DatabaseSessionIsOver. An object with unflushed changes raises PendingChangesError
    (and nothing is expunged).
    """
    session = require_session()
    for obj in objects:
        _check_expungeable(session, obj)
    for obj in objects:
        if obj._cache_.is_alive:
            obj._cache_.detach(obj)


def expunge_all() -> None:
    """Take every object out of the current session (PendingChangesError if any has unflushed changes)."""
    session = require_session()
    for cache in session.caches.values():
        for obj in cache.dirty:
            _check_expungeable(session, obj)
        if cache.m2m:
            attr = next(iter(cache.m2m))
            raise PendingChangesError(
                f"Cannot expunge all objects: collection {attr.qualname} has changes not flushed yet; "
                "flush() first"
            )
    for imap in list(session.maps.values()):
        for obj in list(imap.values()):
            if obj._cache_.is_alive:
                obj._cache_.detach(obj)


def _check_expungeable(session: Session, obj: Any) -> None:
    cache = getattr(obj, "_cache_", None)
    if not isinstance(cache, (SessionCache, DetachedCache)) or not hasattr(obj, "_pk_raw_"):
        raise TypeError(f"expunge() takes entity objects, got {obj!r}")
    if not isinstance(cache, SessionCache) or not cache.is_alive:
        return  # already out of the session
    if cache.session is not session:
        raise TransactionError(f"Cannot expunge {obj!r}: it belongs to another session")
    if obj._status_ in (CREATED, MODIFIED, DELETED) or obj in cache.dirty:
        raise PendingChangesError(
            f"Cannot expunge {obj!r}: it has changes not flushed yet "
            f"({_STATUS_WORDS.get(obj._status_, 'modified')}); flush() or roll them back first"
        )
    if cache.m2m:
        for attr, (added, removed) in cache.m2m.items():
            if any(obj is owner or obj is item for owner, item in (*added, *removed)):
                raise PendingChangesError(
                    f"Cannot expunge {obj!r}: its collection {attr.qualname} has changes not flushed yet; "
                    "flush() first"
                )


_STATUS_WORDS = {CREATED: "created", MODIFIED: "modified", DELETED: "marked for deletion"}


def _abandon_async_caches(session: Session) -> None:
    """Detach the caches of a session that cannot be ended synchronously; roll back on the loop if one runs."""
    loop = asyncio._get_running_loop()
    session.track_mapped()
    caches = list(session.caches.values())
    session.caches.clear()
    for cache in caches:
        if cache.is_async and cache.conn is not None and loop is not None:
            loop.create_task(cache.aclose_db(True))
        elif not cache.is_async:
            cache.close_db(True)
        cache.is_alive = False


def with_transaction(*args: Any, **kwargs: Any) -> Any:
    """Deprecated alias of ``db_session``."""
    warnings.warn(
        "@with_transaction decorator is deprecated, use @db_session decorator instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return db_session(*args, **kwargs)
