"""An int attribute compared with a float in a query compares as numbers (README "Errors": the
types a query compares); assigning a float to it is still refused."""

from __future__ import annotations

import pytest

from nextorm import AttributeTypeError, Database, Optional, Required, db_session, select


@pytest.fixture
def scores(db: Database) -> type:
    """Scores 101, 102 and 103."""

    class Score(db.Entity):
        name = Required(str)
        points = Optional(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        for points in (101, 102, 103):
            Score(name=f"s{points}", points=points)
    return Score


def test_an_int_attribute_compares_with_a_float_as_a_number(scores: type) -> None:
    """Ordering, equality and in with floats; a float computed in the query's scope too."""
    with db_session:
        i, f = 100, 2.0
        assert select(s.points for s in scores if s.points > i + f)[:] == [103]
        assert sorted(scores.select(scores.points >= 101.5).values(scores.points)[:]) == [102, 103]
        assert scores.select(scores.points == 102.0).get().points == 102
        assert scores.select(scores.points == 102.5).count() == 0
        assert sorted(s.points for s in scores.select(scores.points.in_([101.0, 103.0, 5.5]))) == [101, 103]


def test_a_float_that_is_not_finite_or_assigned_is_refused(scores: type) -> None:
    """nan and inf are not compared as numbers; assigning a float to an int attribute raises."""
    with db_session:
        with pytest.raises(AttributeTypeError, match=r"Score\.points must be int"):
            scores.select(scores.points > float("nan"))[:]
        score = scores.get(name="s101")
        with pytest.raises(AttributeTypeError, match=r"Score\.points must be int\. Got float: 1\.5"):
            score.points = 1.5
