"""``startswith``/``endswith`` of a prefix or suffix the query computes: another attribute or a
string expression of one (attribute expressions), or ``raw_sql()`` (README "Queries in Pony's syntax")."""

from __future__ import annotations

import pytest

from nextorm import AttributeTypeError, Database, Optional, Required, db_session, raw_sql, select


@pytest.fixture
def words(db: Database) -> type:
    """Words with a part each: a prefix, a suffix, an empty part, a part longer than the word."""

    class Word(db.Entity):
        text = Required(str)
        part = Optional(str)
        size = Optional(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        Word(text="JOHN", part="JO", size=1)
        Word(text="MARY", part="RY", size=2)
        Word(text="ANN", part="", size=3)
        Word(text="BO", part="BOB", size=4)
        Word(text="EVE", part=None, size=5)
    return Word


def test_a_word_starts_or_ends_with_another_attribute(words: type) -> None:
    """An empty part is a prefix and a suffix of any text; a longer one never; NULL never."""
    with db_session:
        starting = {w.text for w in words.select(words.text.startswith(words.part))}
        ending = {w.text for w in words.select(words.text.endswith(words.part))}
        assert starting == {"JOHN", "ANN"}
        assert ending == {"MARY", "ANN"}
        assert {w.text for w in words.select(words.text.startswith(words.part.upper()))} == {"JOHN", "ANN"}


def test_a_prefix_written_in_raw_sql(words: type) -> None:
    """raw_sql() as the prefix or suffix binds its $values in place, also when spelled twice."""
    with db_session:
        y = "j"  # noqa: F841 - read by raw_sql(...$y)
        assert [w.text for w in select(w for w in words if w.text.startswith(raw_sql("UPPER($y)")))] == [
            "JOHN"
        ]
        s = "e"  # noqa: F841 - read by raw_sql(...$s)
        assert [w.text for w in select(w for w in words if w.text.endswith(raw_sql("UPPER($s)")))] == ["EVE"]
        n = 2
        found = select(w.text for w in words if w.size > n and w.text.endswith(raw_sql("UPPER($s)")))[:]
        assert found == ["EVE"]


def test_a_computed_prefix_that_is_not_text_is_refused(words: type) -> None:
    """An int attribute as a prefix raises AttributeTypeError naming it."""
    with db_session:
        with pytest.raises(AttributeTypeError, match=r"startswith\(\) in a query takes a str value, got int"):
            words.select(words.text.startswith(words.size))[:]
