"""Stateful test of the public API: sessions, identity map, unit of work and relationships against a model.

Hypothesis drives a ``RuleBasedStateMachine`` over two entities: ``Team`` (unique ``name``, a
``members`` collection) and ``Member`` (unique optional ``email``, ``team`` -> ``Team.members``,
one-to-many). Rules create, look up (``Entity[pk]`` / ``aget``), query, read, update, delete, change
collections, flush, commit, roll back, nest a session and start a new one; others use deleted
objects and objects of ended sessions. ``Model`` predicts every outcome from dicts: the committed
rows, the rows of the open transaction, and per object of the session its status, whether it is
loaded, its values, the dirty queue in first-change order (flush simulates the statements in that
order, new referenced objects first, and predicts unique violations), the identity map and when IO
(and so an autoflush) happens. Invariants compare the committed database, read with a raw
connection, and the values session objects show with the model after every step.

The machine runs on ``Database`` (SQLite, and PostgreSQL when ``NEXTORM_TEST_POSTGRES`` is set) and
on ``AsyncDatabase``, whose session lives in one task of one event loop per example; there every
call that needs IO is first made without ``await`` and must raise ``AsyncRequired`` and change
nothing. Each example starts from a committed population and an empty session. ``SCENARIOS`` pins
programs Hypothesis reaches rarely. ``--soak`` runs 400 examples of 60 steps instead of 40 of 25.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from nextorm import (
    Database,
    Optional,
    PrimaryKey,
    Required,
    Set,
    acommit,
    aflush,
    arollback,
    commit,
    db_session,
    flush,
    rollback,
)

CI_SETTINGS = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
SOAK_SETTINGS = settings(CI_SETTINGS, max_examples=400, stateful_step_count=60)

TEAM_NAMES = ("red", "blue", "green", "")  # "" is refused: the name is Required
NICKS = ("ann", "bob")
EMAILS = (None, "a@x", "b@x", "c@x")
LEVELS = st.integers(0, 3)
PICK = st.integers(0, 63)

CREATED, LOADED, MODIFIED, DELETED, GONE = 1, 2, 3, 4, 5
UNIQUE = {"Team": "name", "Member": "email"}
#: the plain columns of each entity (the reference ``team`` is compared separately)
PLAIN = {"Team": ("name",), "Member": ("nick", "email", "level")}

Outcome = tuple[Any, ...]  # ("ok", value) or ("err", exception class name[, message])


def declare(database: Database) -> tuple[type, type]:
    """Map Team and Member onto ``database`` and create their tables."""

    class Team(database.Entity):
        _table_ = "sm_team"
        id = PrimaryKey(int, auto=True)
        name = Required(str, unique=True)
        members = Set("Member")

    class Member(database.Entity):
        _table_ = "sm_member"
        id = PrimaryKey(int, auto=True)
        nick = Required(str)
        email = Optional(str, unique=True)
        level = Required(int, default=0)
        team = Optional(Team)

    database.generate_mapping(create_tables=True)
    return Team, Member


# -- the model ------------------------------------------------------------------------------------


@dataclass
class MObj:
    """The model of one object of the open session."""

    kind: str
    status: int
    loaded: bool
    values: dict[str, Any]
    members_loaded: bool = False
    #: columns written since the object's last flush
    pending: set[str] = field(default_factory=set)


@dataclass
class Detached:
    """What an object of an ended (or rolled back) session still shows."""

    kind: str
    loaded: bool
    values: dict[str, Any]


class Model:
    """Predicts outcomes from the committed rows, the transaction's rows and the session's objects."""

    # Rows and objects are keyed by token; a reference holds the token of its target. Database ids
    # are learned from the objects once their INSERT ran (``learn_id``).

    def __init__(self, learn_id: Callable[[int], int]) -> None:
        self.learn_id = learn_id
        self.tokens = itertools.count(1)
        self.kinds: dict[int, str] = {}
        self.ids: dict[int, int] = {}
        self.committed: dict[int, dict[str, Any]] = {}
        self.txn: dict[int, dict[str, Any]] = {}
        self.sess: dict[int, MObj] = {}
        self.dirty: dict[int, None] = {}
        self.imap: dict[tuple[str, int], int] = {}
        #: objects detached by the last operation, for the machine to move out of the session
        self.just_detached: list[tuple[int, Detached]] = []

    # -- views ----------------------------------------------------------------------------------------

    def rows(self) -> dict[int, dict[str, Any]]:
        """What the session sees: the transaction's rows with the session's pending changes."""
        rows = {t: v for t, v in self.txn.items() if t not in self.sess}
        rows.update({t: o.values for t, o in self.sess.items() if o.status < DELETED})
        return rows

    def live(self, kind: str | None = None) -> list[int]:
        """Tokens of session objects not deleted, in token order."""
        return [t for t, o in self.sess.items() if o.status < DELETED and kind in (None, o.kind)]

    def members_of(self, team: int) -> set[int]:
        """Members the session sees in ``team``."""
        return {t for t, v in self.rows().items() if self.kinds[t] == "Member" and v["team"] == team}

    def find(self, kind: str, column: str, value: Any) -> list[int]:
        """Tokens of the transaction's rows of ``kind`` whose ``column`` is ``value``."""
        return [t for t, v in self.txn.items() if self.kinds[t] == kind and v[column] == value]

    def find_id(self, kind: str, pk: int) -> int | None:
        """The token of the transaction's row of ``kind`` with primary key ``pk``."""
        found = [t for t in self.txn if self.kinds[t] == kind and self.ids.get(t) == pk]
        assert len(found) <= 1, f"two rows of {kind} with id {pk}: {found}"
        return found[0] if found else None

    def holder(self, kind: str, value: Any, other_than: int | None = None) -> int | None:
        """The live loaded session object of ``kind`` holding unique ``value`` (a CacheIndexError clash)."""
        if value is None:
            return None
        column = UNIQUE[kind]
        for t, o in self.sess.items():
            if (
                t != other_than
                and o.kind == kind
                and o.status < DELETED
                and o.loaded
                and o.values[column] == value
            ):
                return t
        return None

    # -- changes in the session -------------------------------------------------------------------

    def create(self, kind: str, values: dict[str, Any]) -> Outcome:
        """``Team(...)`` / ``Member(...)``: validation, unique clash in the session, else a pending INSERT."""
        if kind == "Team" and values["name"] == "":
            return ("err", "ValidationError")
        if self.holder(kind, values[UNIQUE[kind]]) is not None:
            return ("err", "CacheIndexError")
        token = next(self.tokens)
        self.kinds[token] = kind
        self.sess[token] = MObj(kind, CREATED, True, dict(values), members_loaded=kind == "Team")
        self.dirty[token] = None
        return ("ok", token)

    def assign(self, token: int, changes: dict[str, Any]) -> Outcome:
        """``obj.set(**changes)`` (or one assignment): all of it or, on a refusal, nothing."""
        o = self.sess[token]
        if changes.get("name", None) == "":
            return ("err", "ValidationError")
        column = UNIQUE[o.kind]
        if (
            column in changes
            and changes[column] != o.values[column]
            and self.holder(o.kind, changes[column], token) is not None
        ):
            return ("err", "CacheIndexError")
        for name, value in changes.items():
            self._write(token, name, value)
        return ("ok", None)

    def _write(self, token: int, column: str, value: Any) -> None:
        o = self.sess[token]
        if o.values[column] == value:
            return  # an equal value is not a change
        o.values[column] = value
        o.pending.add(column)
        if o.status == LOADED:
            o.status = MODIFIED
            self.dirty[token] = None

    def delete(self, token: int) -> Outcome:
        """``obj.delete()``: a team loads its members (IO) and unlinks them; then a pending DELETE."""
        o = self.sess[token]
        if o.kind == "Team":
            if o.status != CREATED and not o.members_loaded:
                if not self.flush():
                    return ("err", "TransactionIntegrityError")
                self._load_members(token)
            for member in sorted(self.members_of(token)):
                self._write(member, "team", None)
        if o.status == CREATED:
            o.status = GONE
            self.dirty.pop(token, None)
        else:
            o.status = DELETED
            self.dirty.setdefault(token, None)
        return ("ok", None)

    # -- IO ---------------------------------------------------------------------------------------

    def flush(self) -> bool:
        """Send the dirty queue in order; False (and the session rolled back) when a statement fails."""
        if not self.dirty:
            return True
        order = self._dependency_order(list(self.dirty))
        state = copy.deepcopy(self.txn)
        for t in order:
            o = self.sess[t]
            if o.status in (CREATED, MODIFIED):
                state[t] = dict(o.values)
            elif o.status == DELETED:
                del state[t]
            else:
                continue
            if self._violates_unique(state):
                self.rollback()
                return False
        self.txn = state
        for t in order:
            o = self.sess[t]
            o.pending.clear()
            if o.status == CREATED:
                self.ids[t] = pk = self.learn_id(t)
                self.imap[(o.kind, pk)] = t
                o.status = LOADED
            elif o.status == MODIFIED:
                o.status = LOADED
            elif o.status == DELETED:
                o.status = GONE
                if self.imap.get((o.kind, self.ids[t])) == t:
                    del self.imap[(o.kind, self.ids[t])]
        self.dirty.clear()
        return True

    def _dependency_order(self, batch: list[int]) -> list[int]:
        """First-change order, except that a new team goes before the members referring to it."""
        in_batch, seen, ordered = set(batch), set(), []

        def visit(t: int) -> None:
            if t in seen:
                return
            seen.add(t)
            o = self.sess[t]
            target = o.values.get("team")
            if o.status in (CREATED, MODIFIED) and target in in_batch and self.sess[target].status == CREATED:
                visit(target)
            ordered.append(t)

        for t in batch:
            visit(t)
        return ordered

    def _violates_unique(self, state: dict[int, dict[str, Any]]) -> bool:
        for kind, column in UNIQUE.items():
            values = [v[column] for t, v in state.items() if self.kinds[t] == kind and v[column] is not None]
            if len(values) != len(set(values)):
                return True
        return False

    def commit(self) -> bool:
        """Flush and commit; False when the flush failed (and everything was rolled back)."""
        if not self.flush():
            return False
        self.committed = copy.deepcopy(self.txn)
        return True

    def rollback(self) -> None:
        """Roll the transaction back and detach every object of the session."""
        self._detach()
        self.txn = copy.deepcopy(self.committed)

    def end_session(self, commit: bool) -> bool:
        """Leave the outermost session, committing or rolling back; every object is detached."""
        ok = self.commit() if commit else True
        self.rollback()
        return ok

    def _detach(self) -> None:
        self.just_detached += [
            (t, Detached(o.kind, o.loaded, self._shown(t, o))) for t, o in self.sess.items()
        ]
        self.sess.clear()
        self.dirty.clear()
        self.imap.clear()

    def _shown(self, token: int, o: MObj) -> dict[str, Any]:
        """What a rolled-back object shows: committed values, but its changes not yet flushed."""
        committed = self.committed.get(token)
        if committed is None:
            return dict(o.values)  # created in the rolled-back transaction
        return {c: o.values[c] if c in o.pending else v for c, v in committed.items()}

    def _materialize(self, token: int) -> None:
        """A row fetched into the session: a new loaded object, or the known one (now loaded)."""
        o = self.sess.get(token)
        if o is None:
            kind = self.kinds[token]
            self.sess[token] = MObj(kind, LOADED, True, dict(self.txn[token]))
            self.imap[(kind, self.ids[token])] = token
        else:
            o.loaded = True

    def _load_members(self, team: int) -> None:
        for t in self.find("Member", "team", team):
            self._materialize(t)
        self.sess[team].members_loaded = True

    def seed(self, team: int) -> None:
        """Reading ``member.team``: the team's object, made (not loaded) when the session has none."""
        if team not in self.sess:
            assert team in self.txn, f"a member refers to team {team}, which is not in the database"
            self.sess[team] = MObj("Team", LOADED, False, dict(self.txn[team]))
            self.imap[("Team", self.ids[team])] = team

    def read(self, token: int) -> Outcome:
        """Reading a column: an object that is not loaded loads (an autoflush first)."""
        o = self.sess[token]
        if not o.loaded:
            if not self.flush():
                return ("err", "TransactionIntegrityError")
            o.loaded = True
        return ("ok", dict(o.values))

    def members(self, team: int) -> Outcome:
        """Iterating ``team.members``: loaded on first use (an autoflush first)."""
        if not self.sess[team].members_loaded:
            if not self.flush():
                return ("err", "TransactionIntegrityError")
            self._load_members(team)
        return ("ok", self.members_of(team))

    def lookup(self, kind: str, pk: int) -> Outcome:
        """``Entity[pk]``: the identity map (no IO) when it has the key, else a query (an autoflush first)."""
        token = self.imap.get((kind, pk))
        if token is not None:
            return ("ok", None if self.sess[token].status >= DELETED else token)
        if not self.flush():
            return ("err", "TransactionIntegrityError")
        token = self.find_id(kind, pk)
        if token is not None:
            self._materialize(token)
        return ("ok", token)

    def query(self, kind: str, match: Callable[[dict[str, Any]], bool]) -> Outcome:
        """A query (an autoflush first): the matching rows' tokens in id order."""
        if not self.flush():
            return ("err", "TransactionIntegrityError")
        found = sorted(
            (t for t, v in self.txn.items() if self.kinds[t] == kind and match(v)), key=self.ids.get
        )
        for t in found:
            self._materialize(t)
        return ("ok", found)

    def count(self, kind: str) -> Outcome:
        """``select().count()`` (an autoflush first)."""
        if not self.flush():
            return ("err", "TransactionIntegrityError")
        return ("ok", sum(1 for t in self.txn if self.kinds[t] == kind))


# -- running calls: directly, or in the one task that owns an async session ------------------------


def outcome_of(exc: BaseException) -> Outcome:
    """An exception as ("err", class name, message); the exception itself is not kept."""
    return ("err", type(exc).__name__, str(exc))


class SyncDriver:
    """Runs each call directly on this thread."""

    is_async = False

    def call(self, fn: Callable[[], Any]) -> Outcome:
        """The outcome of ``fn()``."""
        try:
            return ("ok", fn())
        except Exception as exc:
            return outcome_of(exc)

    def close(self) -> None:
        """Nothing to release."""


class AsyncDriver:
    """Runs each call (awaiting what it returns) inside one long-lived task of a private event loop."""

    is_async = True

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.requests: asyncio.Queue[Any] = asyncio.Queue()
        self.worker = self.loop.create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            fn, done = await self.requests.get()
            if fn is None:
                done.set_result(None)
                return
            try:
                result = fn()
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                done.set_result(outcome_of(exc))
            else:
                done.set_result(("ok", result))

    def call(self, fn: Callable[[], Any]) -> Outcome:
        """The outcome of ``fn()`` (awaited when it returns an awaitable), run in the worker task."""
        done = self.loop.create_future()
        self.requests.put_nowait((fn, done))
        return self.loop.run_until_complete(done)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the worker task and close the loop."""
        self.requests.put_nowait((None, self.loop.create_future()))
        self.loop.run_until_complete(self.worker)
        self.loop.close()


# -- the machine ----------------------------------------------------------------------------------


def choose(candidates: list[Any], pick: int) -> Any:
    """One of ``candidates`` (non-empty), by a drawn number."""
    return candidates[pick % len(candidates)]


class SessionMachine(RuleBasedStateMachine):
    """One database, one open session at a time, and the model it must agree with."""

    storage: Any  # the reliability conftest's Storage
    driver_type: type[SyncDriver] | type[AsyncDriver]

    def __init__(self) -> None:
        super().__init__()
        self.driver = self.driver_type()
        self.is_async = self.driver.is_async
        try:
            self.db = self.storage.database(asyncio=self.is_async)
            self.raw = self.storage.client()
            self.Team, self.Member = declare(self.db)
        except BaseException:
            self.driver.close()  # teardown() is not called for a machine that failed to start
            raise
        self.entities = {"Team": self.Team, "Member": self.Member}
        self.model = Model(self._id_of)
        self.objs: dict[int, Any] = {}
        self.detached: list[tuple[Any, Detached]] = []
        self._enter()

    def teardown(self) -> None:
        """Leave the session (rolling back), drop the tables and close every connection."""
        try:
            self.call(lambda: self._exit(RuntimeError("end of the example")))
            if self.is_async:
                self.call(lambda: self.db.adisconnect())  # type: ignore[attr-defined]
        finally:
            self.driver.close()
            self.raw.close()
        self.db.drop_all_tables(with_all_data=True)  # the next example starts from empty tables
        self.db.disconnect()

    # -- plumbing -----------------------------------------------------------------------------------

    def call(self, fn: Callable[[], Any]) -> Outcome:
        """The outcome of ``fn()`` where the session lives."""
        return self.driver.call(fn)

    def _enter(self) -> None:
        assert (
            self.call(lambda: db_session.__aenter__() if self.is_async else db_session.__enter__())[0] == "ok"
        )

    def _exit(self, exc: BaseException | None) -> Any:
        exc_type = None if exc is None else type(exc)
        if self.is_async:
            return db_session.__aexit__(exc_type, exc, None)
        return db_session.__exit__(exc_type, exc, None)

    def _id_of(self, token: int) -> int:
        obj = self.objs[token]
        # repr shows ``Team[new:N]`` until the INSERT ran; reading ``id`` before that would flush
        assert "[new:" not in repr(obj), f"{obj!r} should have been inserted by now"
        got = self.read(obj, "id")
        assert got[0] == "ok" and type(got[1]) is int, f"no id for the inserted {obj!r}: {got}"
        return got[1]  # type: ignore[no-any-return]

    def expect(self, got: Outcome, expected: Outcome, what: str) -> None:
        """Fail unless ``got`` is a success when ``expected`` is one, or the exception it names."""
        if expected[0] == "err":
            assert got[:2] == expected[:2], f"{what}: expected {expected[1]}, got {got}"
            if expected[1] == "TransactionIntegrityError" and not what.startswith("leaving"):
                self.recover(what)
        else:
            assert got[0] == "ok", f"{what}: expected success, got {got}"
        for token, snapshot in self.model.just_detached:
            obj = self.objs.pop(token, None)
            if obj is not None:
                self.detached.append((obj, snapshot))
        self.model.just_detached.clear()
        del self.detached[:-30]

    def recover(self, what: str) -> None:
        """After a failed flush: the session refuses work (README "Sessions") until ``rollback()``."""
        got = self.call(aflush if self.is_async else flush)
        assert got[:2] == ("err", "PendingRollbackError"), f"flush() after the failed {what}: {got}"
        assert self.call(arollback if self.is_async else rollback) == ("ok", None), (
            "rollback() after a failure"
        )

    def read(self, obj: Any, name: str, convert: Callable[[Any], Any] | None = None) -> Outcome:
        """The outcome of reading ``obj.name`` (passed through ``convert``) without await."""
        return self.call(lambda: getattr(obj, name) if convert is None else convert(getattr(obj, name)))

    def refused(self, fn: Callable[[], Any], what: str) -> None:
        """On an AsyncDatabase: ``fn`` (a call that needs IO, made without await) raises AsyncRequired."""
        got = self.call(fn)
        assert got[:2] == ("err", "AsyncRequired"), f"{what} without await: expected AsyncRequired, got {got}"

    def adopt(self, kind: str, obj: Any) -> int:
        """The token of an object the ORM returned; a known token must come back as the same object."""
        for token, known in self.objs.items():
            if known is obj:
                return token
        pk = self.call(lambda: obj.id)
        assert pk[0] == "ok", f"reading the id of {obj!r}: {pk}"
        token = self.model.find_id(kind, pk[1])
        assert token is not None, f"{obj!r} is not a row the model knows"
        assert token not in self.objs, f"{obj!r} is a second object for the row of {self.objs[token]!r}"
        self.objs[token] = obj
        return token

    def handles(self, kind: str | None = None, loaded_only: bool = False) -> list[int]:
        """Live objects of the session that the machine holds."""
        return [
            t
            for t in self.model.live(kind)
            if t in self.objs and (self.model.sess[t].loaded or not loaded_only)
        ]

    def known_keys(self) -> list[tuple[str, int]]:
        """Every (entity, id) the database gave out, deleted rows' included."""
        return sorted({(self.model.kinds[t], pk) for t, pk in self.model.ids.items()})

    # -- creating ----------------------------------------------------------------------------------

    @initialize(
        teams=st.lists(st.sampled_from(TEAM_NAMES[:-1]), unique=True, max_size=3),
        members=st.lists(
            st.tuples(st.sampled_from(NICKS), st.sampled_from(EMAILS), LEVELS, st.one_of(st.none(), PICK)),
            max_size=5,
        ),
    )
    def populate(self, teams: list[str], members: list[tuple[str, str | None, int, int | None]]) -> None:
        """Commit some rows, then start with an empty session: objects come from lookups and queries."""
        for name in teams:
            self.create_team(name)
        for nick, email, level, team in members:
            self.create_member(nick, email, level, team)
        self.new_session("commit")

    @rule(
        name=st.sampled_from(TEAM_NAMES),
        member=st.one_of(st.none(), st.tuples(st.sampled_from(NICKS), st.sampled_from(EMAILS), LEVELS)),
    )
    def create_team(self, name: str, member: tuple[str, str | None, int] | None = None) -> None:
        """``Team(name=...)``, optionally followed by ``team.members.create(...)``."""
        got = self.call(lambda: self.Team(name=name))
        expected = self.model.create("Team", {"name": name})
        self.expect(got, expected, f"Team(name={name!r})")
        if expected[0] != "ok":
            return
        team, token = got[1], expected[1]
        self.objs[token] = team
        if member is None:
            return
        nick, email, level = member
        got = self.call(lambda: team.members.create(nick=nick, email=email, level=level))
        expected = self.model.create("Member", {"nick": nick, "email": email, "level": level, "team": token})
        self.expect(got, expected, f"{team!r}.members.create(email={email!r})")
        if expected[0] == "ok":
            self.objs[expected[1]] = got[1]

    @rule(
        nick=st.sampled_from(NICKS),
        email=st.sampled_from(EMAILS),
        level=LEVELS,
        team=st.one_of(st.none(), PICK),
    )
    def create_member(self, nick: str, email: str | None, level: int, team: int | None) -> None:
        """``Member(...)`` with or without a team of the session."""
        teams = self.handles("Team")
        team_token = choose(teams, team) if teams and team is not None else None
        team_obj = None if team_token is None else self.objs[team_token]
        got = self.call(lambda: self.Member(nick=nick, email=email, level=level, team=team_obj))
        expected = self.model.create(
            "Member", {"nick": nick, "email": email, "level": level, "team": team_token}
        )
        self.expect(got, expected, f"Member(email={email!r}, team={team_obj!r})")
        if expected[0] == "ok":
            self.objs[expected[1]] = got[1]

    # -- reading -----------------------------------------------------------------------------------

    @precondition(lambda self: self.handles())
    @rule(pick=PICK)
    def read_object(self, pick: int) -> None:
        """Read every column of an object (loading it first when needed) and ``member.team``."""
        token = choose(self.handles(), pick)
        obj, o = self.objs[token], self.model.sess[token]
        first = PLAIN[o.kind][0]
        if self.is_async and not o.loaded:
            self.refused(lambda: getattr(obj, first), f"{obj!r}.{first}")
            got = self.call(lambda: getattr(obj.awaitable_attrs, first))
        else:
            got = self.call(lambda: getattr(obj, first))
        expected = self.model.read(token)
        self.expect(got, expected, f"{obj!r}.{first}")
        if expected[0] == "err":
            return
        values = expected[1]
        assert got[1] == values[first]
        for column in PLAIN[o.kind]:
            assert self.read(obj, column) == ("ok", values[column]), f"{obj!r}.{column}"
        if o.kind == "Member":
            team = self.call(lambda: obj.team)
            assert team[0] == "ok", team
            if values["team"] is None:
                assert team[1] is None, f"{obj!r}.team is {team[1]!r}, expected None"
            else:
                self.model.seed(values["team"])
                known = self.objs.setdefault(values["team"], team[1])
                assert team[1] is known, f"{obj!r}.team is {team[1]!r}, not the session's {known!r}"

    @precondition(lambda self: self.known_keys())
    @rule(pick=PICK)
    def lookup_by_primary_key(self, pick: int) -> None:
        """``Entity[pk]`` of any id ever given out; on AsyncDatabase a miss needs ``aget``."""
        kind, pk = choose(self.known_keys(), pick)
        entity = self.entities[kind]
        needs_io = (kind, pk) not in self.model.imap
        got = self.call(lambda: entity[pk])
        if self.is_async and needs_io:
            assert got[:2] == ("err", "AsyncRequired"), (
                f"{kind}[{pk}] on a miss: expected AsyncRequired, got {got}"
            )
            got = self.call(lambda: entity.aget(id=pk))
        elif got[:2] == ("err", "ObjectNotFound"):
            got = ("ok", None)
        expected = self.model.lookup(kind, pk)
        self.expect(got, expected, f"{kind}[{pk}]")
        if expected[0] == "ok":
            if expected[1] is None:
                assert got[1] is None, f"{kind}[{pk}] gave {got[1]!r}, expected no object"
            else:
                assert self.adopt(kind, got[1]) == expected[1], f"{kind}[{pk}] gave {got[1]!r}"

    def _run_query(
        self,
        kind: str,
        sync: Callable[[], Any],
        awaited: Callable[[], Any],
        match: Callable[[Any], bool],
        what: str,
    ) -> None:
        got = self.call(awaited if self.is_async else sync)
        expected = self.model.query(kind, match)
        self.expect(got, expected, what)
        if expected[0] == "ok":
            result = got[1] if isinstance(got[1], list) else [] if got[1] is None else [got[1]]
            tokens = [self.adopt(kind, obj) for obj in result]
            assert tokens == expected[1], f"{what} gave {result!r}, expected tokens {expected[1]}"

    @rule(
        which=st.sampled_from(("select", "team by name", "member by email", "count")),
        level=LEVELS,
        name=st.sampled_from(TEAM_NAMES[:-1]),
        email=st.sampled_from(EMAILS[1:]),
    )
    def query(self, which: str, level: int, name: str, email: str) -> None:
        """A select, a ``get`` by a unique column, or a count; each autoflushes first."""
        Team, Member = self.Team, self.Member
        if which == "select":
            query = Member.select(Member.level >= level).order_by(Member.id)
            self._run_query("Member", lambda: list(query), query.afetch, lambda v: v["level"] >= level, which)
        elif which == "team by name":
            self._run_query(
                "Team",
                lambda: Team.get(name=name),
                lambda: Team.aget(name=name),
                lambda v: v["name"] == name,
                which,
            )
        elif which == "member by email":
            self._run_query(
                "Member",
                lambda: Member.get(email=email),
                lambda: Member.aget(email=email),
                lambda v: v["email"] == email,
                which,
            )
        else:
            query = Member.select()
            got = self.call(query.acount if self.is_async else query.count)
            expected = self.model.count("Member")
            self.expect(got, expected, "Member.select().count()")
            if expected[0] == "ok":
                assert got[1] == expected[1], f"count() is {got[1]}, expected {expected[1]}"

    @precondition(lambda self: self.handles("Team"))
    @rule(pick=PICK)
    def read_collection(self, pick: int) -> None:
        """Iterate ``team.members`` (loading it first when needed)."""
        token = choose(self.handles("Team"), pick)
        team = self.objs[token]
        if self.is_async:
            if not self.model.sess[token].members_loaded:
                self.refused(lambda: len(team.members), f"len({team!r}.members)")
            got = self.call(lambda: _set_of(team.awaitable_attrs.members))
        else:
            got = self.call(lambda: set(team.members))
        expected = self.model.members(token)
        self.expect(got, expected, f"{team!r}.members")
        if expected[0] == "ok":
            tokens = {self.adopt("Member", obj) for obj in got[1]}
            assert tokens == expected[1], f"{team!r}.members is {got[1]!r}, expected tokens {expected[1]}"

    # -- changing ----------------------------------------------------------------------------------

    @precondition(lambda self: self.handles("Member"))
    @rule(
        pick=PICK, level=LEVELS, email=st.sampled_from(EMAILS), how=st.sampled_from(("level", "email", "set"))
    )
    def update_member(self, pick: int, level: int, email: str | None, how: str) -> None:
        """Assign ``level`` or the unique ``email``, or both at once with ``set()``."""
        token = choose(self.handles("Member"), pick)
        obj = self.objs[token]
        if how == "level":
            changes: dict[str, Any] = {"level": level}
            got = self.call(lambda: setattr(obj, "level", level))
        elif how == "email":
            changes = {"email": email}
            got = self.call(lambda: setattr(obj, "email", email))
        else:
            changes = {"level": level, "email": email}
            got = self.call(lambda: obj.set(level=level, email=email))
        self.expect(got, self.model.assign(token, changes), f"{obj!r} <- {changes}")

    @precondition(lambda self: self.handles("Team", loaded_only=True))
    @rule(pick=PICK, name=st.sampled_from(TEAM_NAMES))
    def rename_team(self, pick: int, name: str) -> None:
        """Assign a loaded team's unique ``name``."""
        token = choose(self.handles("Team", loaded_only=True), pick)
        obj = self.objs[token]
        got = self.call(lambda: setattr(obj, "name", name))
        self.expect(got, self.model.assign(token, {"name": name}), f"{obj!r}.name = {name!r}")

    @precondition(lambda self: self.handles("Member"))
    @rule(pick=PICK, team=st.one_of(st.none(), PICK))
    def move_member(self, pick: int, team: int | None) -> None:
        """Assign ``member.team`` (a team of the session or None)."""
        token = choose(self.handles("Member"), pick)
        teams = self.handles("Team")
        team_token = choose(teams, team) if teams and team is not None else None
        obj, team_obj = self.objs[token], None if team_token is None else self.objs[team_token]
        got = self.call(lambda: setattr(obj, "team", team_obj))
        self.expect(got, self.model.assign(token, {"team": team_token}), f"{obj!r}.team = {team_obj!r}")

    @precondition(lambda self: self.handles("Team") and self.handles("Member"))
    @rule(team=PICK, member=PICK, add=st.booleans())
    def change_collection(self, team: int, member: int, add: bool) -> None:
        """``team.members.add(member)`` or ``.remove(member)``."""
        team_token = choose(self.handles("Team"), team)
        token = choose(self.handles("Member"), member)
        team_obj, obj = self.objs[team_token], self.objs[token]
        if add:
            got = self.call(lambda: team_obj.members.add(obj))
            expected = self.model.assign(token, {"team": team_token})
        else:
            got = self.call(lambda: team_obj.members.remove(obj))
            is_member = self.model.sess[token].values["team"] == team_token
            expected = self.model.assign(token, {"team": None}) if is_member else ("ok", None)
        self.expect(got, expected, f"{team_obj!r}.members.{'add' if add else 'remove'}({obj!r})")

    @precondition(lambda self: self.handles())
    @rule(kind=st.sampled_from(("Team", "Member")), pick=PICK)
    def delete_object(self, kind: str, pick: int) -> None:
        """``obj.delete()``: a team loads its members and unlinks them first."""
        token = choose(self.handles(kind) or self.handles(), pick)
        obj = self.objs[token]
        if self.is_async:
            self.refused(obj.delete, f"{obj!r}.delete()")  # delete() stops before any change
            got = self.call(obj.adelete)
        else:
            got = self.call(obj.delete)
        self.expect(got, self.model.delete(token), f"{obj!r}.delete()")

    # -- the session ---------------------------------------------------------------------------------

    @rule(action=st.sampled_from(("flush", "commit", "rollback")))
    def transaction(self, action: str) -> None:
        """``flush()``, ``commit()`` or ``rollback()`` (awaited twins on AsyncDatabase)."""
        if action == "flush":
            if self.is_async:
                got = self.call(flush)
                if self.model.dirty:
                    assert got[:2] == ("err", "AsyncRequired"), f"flush() with changes pending: {got}"
                else:
                    assert got == ("ok", None), f"flush() with nothing pending: {got}"
            got = self.call(aflush if self.is_async else flush)
            ok = self.model.flush()
        elif action == "commit":
            got = self.call(acommit if self.is_async else commit)
            ok = self.model.commit()
        else:
            got = self.call(arollback if self.is_async else rollback)
            ok = True
            self.model.rollback()
        self.expect(got, ("ok", None) if ok else ("err", "TransactionIntegrityError"), f"{action}()")

    @rule(how=st.sampled_from(("commit", "abandon", "nested")))
    def new_session(self, how: str) -> None:
        """Leave the session (committing, or by an exception) and open a new one, or nest one."""
        if how == "nested":
            # an inner db_session shares the outer one; leaving it commits nothing
            self._enter()
            assert self.call(lambda: self._exit(None)) == ("ok", None), "leaving a nested db_session"
            return
        got = self.call(lambda: self._exit(None if how == "commit" else RuntimeError("abandon the session")))
        ok = self.model.end_session(how == "commit")
        self.expect(
            got, ("ok", None) if ok else ("err", "TransactionIntegrityError"), f"leaving db_session ({how})"
        )
        self._enter()

    # -- refusals ------------------------------------------------------------------------------------

    @precondition(lambda self: any(self.model.sess[t].status >= DELETED for t in self.objs))
    @rule(pick=PICK, write=st.booleans())
    def use_deleted_object(self, pick: int, write: bool) -> None:
        """An object marked to delete or deleted refuses writes and shows only loaded values."""
        token = choose([t for t in self.objs if self.model.sess[t].status >= DELETED], pick)
        obj, o = self.objs[token], self.model.sess[token]
        column = UNIQUE[o.kind]
        if write:
            got = self.call(lambda: setattr(obj, column, "zzz"))
            assert got[:2] == ("err", "OperationWithDeletedObjectError"), f"{obj!r}.{column} = ...: {got}"
        elif o.status == DELETED and o.loaded:
            assert self.call(lambda: getattr(obj, column)) == ("ok", o.values[column]), f"{obj!r}.{column}"
        else:
            # flushed, or marked to delete before anything was loaded: there is no value to show
            got = self.call(lambda: getattr(obj, column))
            assert got[:2] == ("err", "OperationWithDeletedObjectError"), f"{obj!r}.{column}: {got}"

    @precondition(lambda self: self.detached)
    @rule(pick=PICK, action=st.sampled_from(("read", "write", "delete")))
    def use_detached_object(self, pick: int, action: str) -> None:
        """An object of an ended session shows its loaded values and refuses the rest."""
        obj, snapshot = choose(self.detached, pick)
        column = UNIQUE[snapshot.kind]
        if action == "write":
            got = self.call(lambda: setattr(obj, column, "zzz"))
        elif action == "delete":
            got = self.call(obj.adelete if self.is_async else obj.delete)
        elif snapshot.loaded:
            for name in PLAIN[snapshot.kind]:
                value = snapshot.values[name]
                assert self.read(obj, name) == ("ok", value), f"{obj!r}.{name} after its session"
            return
        else:
            got = self.call(lambda: getattr(obj, column))
        assert got[:2] == ("err", "DatabaseSessionIsOver"), f"{action} {obj!r} after its session: {got}"

    # -- invariants ----------------------------------------------------------------------------------

    @invariant()
    def database_holds_the_committed_rows(self) -> None:
        """Another connection reads exactly the rows the model committed."""
        model = self.model
        teams = {(model.ids[t], v["name"]) for t, v in model.committed.items() if model.kinds[t] == "Team"}
        members = {
            (
                model.ids[t],
                v["nick"],
                v["email"],
                v["level"],
                None if v["team"] is None else model.ids[v["team"]],
            )
            for t, v in model.committed.items()
            if model.kinds[t] == "Member"
        }
        assert set(map(tuple, self.raw.execute("SELECT id, name FROM sm_team").fetchall())) == teams
        rows = self.raw.execute("SELECT id, nick, email, level, team FROM sm_member").fetchall()
        assert set(map(tuple, rows)) == members

    @invariant()
    def session_objects_show_the_model_values(self) -> None:
        """Live session objects show the model's ids, values, references and members."""
        model = self.model
        for token, obj in list(self.objs.items()):
            o = model.sess[token]
            if o.status >= DELETED:
                continue
            if token in model.ids:
                assert self.read(obj, "id") == ("ok", model.ids[token]), f"{obj!r}.id"
            if not o.loaded:
                continue
            for column in PLAIN[o.kind]:
                assert self.read(obj, column) == ("ok", o.values[column]), f"{obj!r}.{column}"
            team = o.values.get("team")
            if o.kind == "Member" and (team is None or team in self.objs):
                got = self.read(obj, "team")
                assert got[0] == "ok" and got[1] is (None if team is None else self.objs[team]), (
                    f"{obj!r}.team: {got}"
                )
            if o.kind == "Team" and o.members_loaded:
                got = self.read(obj, "members", set)
                assert got[0] == "ok", f"{obj!r}.members: {got}"
                assert {self.adopt("Member", m) for m in got[1]} == model.members_of(token), (
                    f"{obj!r}.members"
                )


async def _set_of(members: Any) -> set[Any]:
    """The members of an awaited collection."""
    return set(await members)


# -- the tests ------------------------------------------------------------------------------------

#: step programs Hypothesis reaches rarely, run through the same machine: (rule, arguments) pairs
SCENARIOS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "a team marked to delete before it was loaded has no value to show": [
        ("populate", {"teams": ["red"], "members": [("ann", None, 0, 0)]}),
        ("lookup_by_primary_key", {"pick": 0}),  # Member[1]
        ("read_object", {"pick": 0}),  # member.team: Team[1], not loaded
        ("delete_object", {"kind": "Team", "pick": 0}),
        ("use_deleted_object", {"pick": 0, "write": False}),
        ("use_deleted_object", {"pick": 0, "write": True}),
    ],
    "a unique value taken by an object queued before the one releasing it fails the flush": [
        ("populate", {"teams": [], "members": [("ann", "a@x", 0, None), ("bob", "b@x", 0, None)]}),
        ("lookup_by_primary_key", {"pick": 0}),
        ("lookup_by_primary_key", {"pick": 1}),
        ("update_member", {"pick": 1, "level": 3, "email": None, "how": "level"}),  # bob queued first
        ("update_member", {"pick": 0, "level": 0, "email": None, "how": "email"}),  # ann releases a@x
        ("update_member", {"pick": 1, "level": 3, "email": "a@x", "how": "email"}),  # bob takes it
        ("transaction", {"action": "flush"}),
        ("use_detached_object", {"pick": 1, "action": "read"}),
    ],
    "a unique clash with a row the session never loaded fails at commit and writes nothing": [
        ("populate", {"teams": ["red"], "members": [("ann", "a@x", 0, 0)]}),
        ("create_member", {"nick": "bob", "email": "b@x", "level": 1, "team": None}),
        ("create_member", {"nick": "cid", "email": "a@x", "level": 2, "team": None}),
        ("new_session", {"how": "commit"}),
        ("use_detached_object", {"pick": 1, "action": "write"}),
    ],
    "deleting a team loads and unlinks members the session never loaded": [
        ("populate", {"teams": ["red", "blue"], "members": [("ann", None, 0, 1), ("bob", "b@x", 2, 1)]}),
        ("lookup_by_primary_key", {"pick": 3}),  # Team[2], whose members are not loaded
        ("delete_object", {"kind": "Team", "pick": 0}),
        ("create_team", {"name": "blue", "member": ("cid", "c@x", 1)}),  # the name is free once deleted
        ("transaction", {"action": "commit"}),
        ("query", {"which": "select", "level": 0, "name": "red", "email": "a@x"}),
        ("new_session", {"how": "commit"}),
    ],
}


@pytest.mark.parametrize("driver", [SyncDriver, AsyncDriver], ids=["sync", "async"])
@pytest.mark.parametrize("steps", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_pinned_scenario_agrees_with_the_model(
    storage: Any, driver: type[SyncDriver] | type[AsyncDriver], steps: list[tuple[str, dict[str, Any]]]
) -> None:
    """Each pinned program runs step by step with the invariants checked after every step."""
    machine = type("Machine", (SessionMachine,), {"storage": storage, "driver_type": driver})()
    try:
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.database_holds_the_committed_rows()
            machine.session_objects_show_the_model_values()
    finally:
        machine.teardown()


@pytest.mark.parametrize("driver", [SyncDriver, AsyncDriver], ids=["sync", "async"])
def test_session_state_machine_agrees_with_the_model(
    storage: Any, soak: bool, driver: type[SyncDriver] | type[AsyncDriver]
) -> None:
    """Random programs of creates, lookups, queries, writes, deletes and session changes match the model."""
    machine = type("Machine", (SessionMachine,), {"storage": storage, "driver_type": driver})
    run_state_machine_as_test(machine, settings=SOAK_SETTINGS if soak else CI_SETTINGS)
