"""``@db_session`` on a generator function (README "Sessions"): one session across the steps,
suspended while the generator is paused, committed when it finishes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nextorm import Database, PrimaryKey, Required, TransactionError, commit, db_session
from nextorm.session import active_session


@pytest.fixture
def Account(db: Database) -> type:
    """Accounts 1, 2 and 3 holding 1000, 2000 and 3000."""

    class Account(db.Entity):
        id = PrimaryKey(int)
        amount = Required(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        for number in (1, 2, 3):
            Account(id=number, amount=number * 1000)
    return Account


@pytest.mark.parametrize("option", [{"retry": 3}, {"ddl": True}, {"serializable": True}])
def test_options_that_cannot_apply_to_a_generator(option: dict[str, object]) -> None:
    """``retry``, ``ddl`` and ``serializable`` are refused on a generator function, with Pony's message."""
    name = next(iter(option))
    with pytest.raises(TypeError, match=f"db_session with `{name}` option cannot be applied to generator function"):

        @db_session(**option)  # type: ignore[arg-type]
        def steps() -> Iterator[None]:
            yield

    @db_session(immediate=True)
    def allowed() -> Iterator[None]:
        yield

    assert list(allowed()) == [None]


def test_each_step_runs_in_the_same_session_which_is_suspended_between_steps(Account: type) -> None:
    """Between steps there is no active session; every step sees the same identity map."""

    @db_session
    def amounts() -> Iterator[int]:
        first = active_session()
        a1 = Account[1]
        yield a1.amount
        assert active_session() is first
        assert Account[1] is a1
        yield Account[2].amount

    steps = amounts()
    assert next(steps) == 1000
    assert active_session() is None
    assert next(steps) == 2000
    assert active_session() is None
    with pytest.raises(StopIteration):
        next(steps)
    assert active_session() is None


def test_values_sent_in_and_changes_committed_at_the_end(Account: type) -> None:
    """``send()`` passes values in; changes made after the last pause are committed when it finishes."""

    @db_session
    def transfer(source: int) -> Iterator[int]:
        a1 = Account[source]
        target = yield a1.amount
        a2 = Account[target]
        amount = yield a2.amount
        a1.amount -= amount
        a2.amount += amount

    steps = transfer(1)
    assert next(steps) == 1000
    assert steps.send(2) == 2000
    with pytest.raises(StopIteration):
        steps.send(100)
    with db_session:
        assert (Account[1].amount, Account[2].amount) == (900, 2100)


def test_pausing_with_pending_changes_is_refused_and_rolled_back(Account: type) -> None:
    """A generator may not pause with changes not committed: TransactionError, and nothing is saved."""

    @db_session
    def raise_amount() -> Iterator[int]:
        account = Account[1]
        account.amount += 100
        yield account.amount

    with pytest.raises(TransactionError, match="You need to manually commit\\(\\) changes before suspending"):
        next(raise_amount())
    assert active_session() is None
    with db_session:
        assert Account[1].amount == 1000


def test_commit_before_pausing_keeps_the_change(Account: type) -> None:
    """``commit()`` before ``yield`` saves the change and lets the generator pause."""

    @db_session
    def raise_amount() -> Iterator[int]:
        account = Account[1]
        account.amount += 100
        commit()
        yield account.amount

    assert list(raise_amount()) == [1100]
    with db_session:
        assert Account[1].amount == 1100


def test_a_wrapped_generator_cannot_run_inside_another_session(Account: type) -> None:
    """Advancing the generator inside a db_session raises Pony's TransactionError."""

    @db_session
    def steps() -> Iterator[None]:
        yield

    with pytest.raises(TransactionError, match="cannot be used inside another db_session"), db_session:
        next(steps())


def test_closing_or_throwing_ends_the_session(Account: type) -> None:
    """``close()`` ends the paused session; an exception thrown in propagates and rolls it back."""

    @db_session
    def steps() -> Iterator[int]:
        yield Account[1].amount
        yield Account[2].amount

    paused = steps()
    next(paused)
    paused.close()
    assert active_session() is None
    paused = steps()
    next(paused)
    with pytest.raises(KeyError, match="thrown"):
        paused.throw(KeyError("thrown"))
    assert active_session() is None


def test_an_error_inside_a_step_rolls_the_session_back(Account: type) -> None:
    """An exception raised by the generator rolls its session back and propagates."""

    @db_session
    def steps() -> Iterator[int]:
        yield 1
        Account[1].amount = 0
        raise ValueError("inside")

    paused = steps()
    next(paused)
    with pytest.raises(ValueError, match="inside"):
        next(paused)
    assert active_session() is None
    with db_session:
        assert Account[1].amount == 1000


def test_async_generator_functions_are_refused() -> None:
    """An async generator function cannot be decorated: TypeError says to open the session inside it."""
    with pytest.raises(TypeError, match="async generator"):

        @db_session
        async def steps() -> object:
            yield 1
