"""Values in queries (README "Queries in Pony's syntax"): arithmetic, functions, selected values,
aggregates, ordering by values, on SQLite and PostgreSQL; each generator form beside the
attribute-expression form it compiles to."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from nextorm import (
    AttributeTypeError,
    Database,
    DatabaseError,
    Optional,
    PrimaryKey,
    QueryError,
    Required,
    TranslationError,
    avg,
    between,
    coalesce,
    concat,
    count,
    db_session,
    delete,
    desc,
    group_concat,
    max,
    min,
    raw_sql,
    select,
    sum,
)

EMPLOYEES = [
    # name, dept, salary, hired, born
    ("Ann", "eng", 100, datetime(2020, 3, 4, 10, 30, 15), date(1990, 5, 1)),
    ("bob ", "eng", 80, datetime(2021, 7, 1, 9, 0, 0), None),
    ("Cid", "ops", 60, datetime(2019, 1, 2, 23, 59, 1), date(1985, 12, 24)),
    ("Dee", "ops", 60, datetime(2022, 11, 30, 0, 0, 0), date(2000, 2, 29)),
    ("  Eve", "hr", 90, datetime(2020, 3, 5, 12, 0, 0), date(1990, 7, 7)),
]


@pytest.fixture
def Emp(db: Database) -> Iterator[Any]:
    """An entity with str, int, datetime and date columns holding EMPLOYEES (ids 1..5)."""

    class Emp(db.Entity):
        id = PrimaryKey(int, auto=True)
        name = Required(str, autostrip=False)  # the spaces are what strip() is tested on
        dept = Required(str)
        salary = Required(int)
        hired = Required(datetime)
        born = Optional(date)

    db.generate_mapping(create_tables=True)
    with db_session:
        for name, dept, salary, hired, born in EMPLOYEES:
            Emp(name=name, dept=dept, salary=salary, hired=hired, born=born)
    yield Emp


#: names the query texts below read from this module
TEXT_NAMES = (between, coalesce, concat, date, datetime, timedelta, raw_sql)


def ids(objects: Any) -> list[int]:
    """The sorted ids of ``objects``."""
    return sorted(o.id for o in objects)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (lambda E: E.salary + 10 > 95, [1, 5]),
        (lambda E: E.salary * 2 == E.salary + 60, [3, 4]),
        (lambda E: E.salary - E.id == 97, []),
        (lambda E: E.salary / 7 > 12.5, [1, 5]),
        (lambda E: E.salary // 7 == 8, [3, 4]),
        (lambda E: E.salary % 7 == 4, [3, 4]),
        (lambda E: abs(E.id - 3) == 2, [1, 5]),
        (lambda E: E.name.upper() == "ANN", [1]),
        (lambda E: E.name.lower() == "ann", [1]),
        (lambda E: E.name.strip() == "bob", [2]),
        (lambda E: E.name.lstrip() == "Eve", [5]),
        (lambda E: E.name.rstrip() == "bob", [2]),
        (lambda E: E.name.length() == 4, [2]),
        (lambda E: E.name[1:3] == "nn", [1]),
        (lambda E: E.name[0] == "D", [4]),
        (lambda E: E.name + "!" == "Ann!", [1]),
        (lambda E: concat(E.name, "-", E.salary) == "Cid-60", [3]),
        (lambda E: E.name.lower().startswith("a"), [1]),
        (lambda E: E.name.upper().endswith("EE"), [4]),
        (lambda E: E.name.lower().contains("ve"), [5]),
        (lambda E: E.hired.year == 2020, [1, 5]),
        (lambda E: E.hired.month == 3, [1, 5]),
        (lambda E: E.hired.day == 30, [4]),
        (lambda E: E.hired.hour == 23, [3]),
        (lambda E: E.hired.minute == 30, [1]),
        (lambda E: E.hired.second == 15, [1]),
        (lambda E: E.hired.date() == date(2020, 3, 4), [1]),
        (lambda E: E.born.year < 1990, [3]),
        (lambda E: coalesce(E.born, date(1970, 1, 1)) < date(1980, 1, 1), [2]),
        (lambda E: E.salary.in_([60, 90]), [3, 4, 5]),
        (lambda E: (E.salary + 0).in_([60, 90]), [3, 4, 5]),
        (lambda E: E.born.is_(None), [2]),
        (lambda E: E.born.year.is_(None), [2]),
        (lambda E: E.salary > E.id * 30, [1, 2]),
    ],
)
def test_value_expressions_filter_on_both_databases(Emp: Any, condition: Any, expected: list[int]) -> None:
    """Arithmetic, string and date functions of attributes compile to SQL both databases run."""
    with db_session:
        assert ids(Emp.select(condition(Emp))) == expected


# -- the same values written as generators and lambdas ------------------------------------------------


def test_generator_values_compile_to_the_expression_statement(Emp: Any) -> None:
    """A generator's arithmetic, functions and comparisons of two attributes build the expression form's SQL."""
    low = 90
    pairs = [
        (select(e for e in Emp if e.salary + 10 > low), Emp.select(Emp.salary + 10 > low)),
        (select(e for e in Emp if e.salary > e.id * 30), Emp.select(Emp.salary > Emp.id * 30)),
        (select(e for e in Emp if e.name.lower() == "ann"), Emp.select(Emp.name.lower() == "ann")),
        (select(e for e in Emp if len(e.name.strip()) == 3), Emp.select(Emp.name.strip().length() == 3)),
        (select(e for e in Emp if e.hired.year == 2020), Emp.select(Emp.hired.year == 2020)),
        (select(e for e in Emp if e.name[1:3] == "nn"), Emp.select(Emp.name[1:3] == "nn")),
        (Emp.select(lambda e: abs(e.salary - 70) < 15), Emp.select(abs(Emp.salary - 70) < 15)),
        (
            Emp.select(lambda e: coalesce(e.born, date(1970, 1, 1)) < date(1980, 1, 1)),
            Emp.select(coalesce(Emp.born, date(1970, 1, 1)) < date(1980, 1, 1)),
        ),
    ]
    with db_session:
        for generated, expression in pairs:
            assert generated.sql() == expression.sql()
            assert ids(generated) == ids(expression)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("e for e in Emp if e.salary + 10 > 95", [1, 5]),
        ("e for e in Emp if e.salary * 2 == e.salary + 60", [3, 4]),
        ("e for e in Emp if e.salary / 7 > 12.5", [1, 5]),
        ("e for e in Emp if e.salary // 7 == 8 and e.salary % 7 == 4", [3, 4]),
        ("e for e in Emp if -e.salary < -95", [1]),
        ("e for e in Emp if e.salary > e.id * 30", [1, 2]),
        ("e for e in Emp if len(e.name) == 4", [2]),
        ("e for e in Emp if abs(e.id - 3) == 2", [1, 5]),
        ("e for e in Emp if min(e.salary, 70) == 60", [3, 4]),
        ("e for e in Emp if max(e.salary, 95) == 100", [1]),
        ("e for e in Emp if e.name.upper() == 'ANN'", [1]),
        ("e for e in Emp if e.name.strip() == 'bob' or e.name.lstrip() == 'Eve'", [2, 5]),
        ("e for e in Emp if e.name.rstrip('b ') == 'bo' or e.name.strip(' E') == 've'", [2, 5]),
        ("e for e in Emp if e.name[0] == 'D' or e.name[:2] == 'Ci' or e.name[2:] == 'n'", [1, 3, 4]),
        ("e for e in Emp if 'nn' in e.name.lower() or 've' not in e.name", [1, 2, 3, 4]),
        ("e for e in Emp if e.name.startswith('A') or e.name.lower().endswith('ee')", [1, 4]),
        ("e for e in Emp if e.name + e.dept == 'Cidops'", [3]),
        ("e for e in Emp if f'{e.name}/{e.salary}' == 'Dee/60'", [4]),
        ("e for e in Emp if concat(e.dept, '-', e.id) == 'hr-5'", [5]),
        ("e for e in Emp if e.hired.year == 2020 and e.hired.month == 3 and e.hired.day == 4", [1]),
        ("e for e in Emp if e.hired.hour == 23 or e.hired.minute == 30 or e.hired.second == 15", [1, 3]),
        ("e for e in Emp if e.hired.date() == date(2022, 11, 30)", [4]),
        ("e for e in Emp if e.born.year < 1990", [3]),
        ("e for e in Emp if coalesce(e.born, date(1970, 1, 1)).year == 1970", [2]),
        ("e for e in Emp if e.born is None", [2]),
        ("e for e in Emp if e.born.year is not None and e.salary < 70", [3, 4]),
        ("e for e in Emp if between(e.salary, 80, 95)", [2, 5]),
        ("e for e in Emp if e.born + timedelta(days=1) == date(2000, 3, 1)", [4]),
        ("e for e in Emp if e.born - timedelta(days=366) < date(1985, 1, 1)", [3]),
        ("e for e in Emp if e.hired + timedelta(hours=1) > datetime(2022, 11, 30, 0, 30)", [4]),
        ("e for e in Emp if timedelta(minutes=1) + e.hired < datetime(2019, 1, 3, 0, 0, 30)", [3]),
        ("e for e in Emp if datetime(2022, 1, 1) - e.hired > timedelta(days=1000)", [3]),
        ("e for e in Emp if date(2000, 1, 1) - e.born < timedelta(days=3650)", [1, 4, 5]),
        ("e for e in Emp if raw_sql('e.salary > 85')", [1, 5]),
        ("e for e in Emp if raw_sql('e.salary') > low", [1, 5]),
    ],
)
def test_generator_values_filter_on_both_databases(Emp: Any, text: str, expected: list[int]) -> None:
    """Each value construct of a generator (written as query text here) filters as Python would."""
    low = 85  # noqa: F841 - the query text reads it
    with db_session:
        assert ids(select(text)) == expected


def test_raw_sql_reads_names_where_the_query_runs(Emp: Any) -> None:
    """raw_sql()'s $name and $(expression) are bound parameters read from the query's scope."""
    limit = 85
    names = ["Ann", "Cid"]
    with db_session:
        query = select(e for e in Emp if raw_sql("e.salary > $limit"))
        assert ids(query) == [1, 5]
        assert limit in query.sql()[1]
        assert ids(Emp.select(lambda e: raw_sql("e.name = $(names[1])"))) == [3]
        assert ids(Emp.select().filter(raw_sql("e.salary < $limit"))) == [2, 3, 4]
        assert select(raw_sql("upper(e.dept)") for e in Emp if e.id == 1)[:] == ["ENG"]
        assert [e.id for e in Emp.select().order_by(lambda e: raw_sql("e.salary * -1"))][0] == 1
        text = "e.salary < $limit"  # text computed where the query runs, $names read there
        assert ids(select(e for e in Emp if raw_sql(text))) == [2, 3, 4]
        assert ids(select(e for e in Emp if raw_sql("e.hired < $datetime(2020, 1, 1).isoformat()"))) == [3]


# -- selecting values -------------------------------------------------------------------------------


def test_selecting_values_removes_duplicates_as_pony_does(Emp: Any) -> None:
    """A query of values without the key is DISTINCT; without_distinct() keeps every row."""
    with db_session:
        assert sorted(select(e.dept for e in Emp)) == ["eng", "hr", "ops"]
        assert sorted(select(e.salary for e in Emp).without_distinct()) == [60, 60, 80, 90, 100]
        assert "DISTINCT" in select(e.dept for e in Emp).sql()[0]
        assert "DISTINCT" not in select((e.id, e.dept) for e in Emp).sql()[0]
        assert select(e for e in Emp).distinct().sql()[0].startswith("SELECT DISTINCT")
        assert select(e.dept for e in Emp).count() == 3
        assert select(e.dept for e in Emp).without_distinct().count() == 3  # COUNT(DISTINCT), as Pony


def test_selecting_tuples_references_and_objects(Emp: Any, db: Database) -> None:
    """Tuples of values and objects; converted values (dates, computed) come back as Python types."""
    with db_session:
        rows = select((e.name, e.salary * 2, e.hired.date(), e.born) for e in Emp if e.id < 3).order_by(1)[:]
        assert rows == [
            ("Ann", 200, date(2020, 3, 4), date(1990, 5, 1)),
            ("bob ", 160, date(2021, 7, 1), None),
        ]
        pairs = select((e, e.salary) for e in Emp if e.salary < 70).order_by(lambda e: e.id)[:]
        assert pairs == [(Emp[3], 60), (Emp[4], 60)]
        assert select(e.name for e in Emp if e.id == 3).get() == "Cid"
        assert select(e.salary for e in Emp).order_by(-1).first() == 100


def test_aggregates_of_generators_and_queries(Emp: Any) -> None:
    """count/sum/min/max/avg/group_concat of a generator equal the query methods; sum of nothing is 0."""
    with db_session:
        assert count(e for e in Emp if e.salary > 70) == 3
        assert sum(e.salary for e in Emp) == 390
        assert sum(e.salary for e in Emp if e.id > 10) == 0
        assert min(e.salary for e in Emp) == 60
        assert max(e.hired for e in Emp) == datetime(2022, 11, 30, 0, 0, 0)
        assert avg(e.salary for e in Emp) == 78.0
        assert avg(e.salary for e in Emp if e.id > 10) is None
        assert group_concat(e.name for e in Emp if e.dept == "ops") in ("Cid,Dee", "Dee,Cid")
        assert set(group_concat((e.dept for e in Emp), distinct=True).split(",")) == {"eng", "hr", "ops"}
        assert sorted(group_concat((e.name for e in Emp if e.salary < 85), sep="|").split("|")) == [
            "Cid",
            "Dee",
            "bob ",
        ]
        query = select(e.salary for e in Emp)
        assert (query.sum(), query.min(), query.max(), query.avg()) == (390, 60, 100, 78.0)
        assert query.sum(distinct=True) == 330
        assert select(e.salary for e in Emp).order_by(-1)[:2] == [100, 90]
        assert select(e.salary for e in Emp).without_distinct().limit(2, offset=1).order_by(1).sum() == 140
        assert sum([1, 2]) == 3 and min(3, 1) == 1 and max([4, 5]) == 5  # Python's, outside queries
        with pytest.raises(QueryError, match="needs a query of one value"):
            select(e for e in Emp).sum()


def test_aggregates_in_tuples_group_by_the_other_items(Emp: Any) -> None:
    """Aggregates beside values group by those values; conditions on aggregates go to HAVING."""
    with db_session:
        rows = select((e.dept, count(e), sum(e.salary), max(e.salary)) for e in Emp).order_by(1)[:]
        assert rows == [("eng", 2, 180, 100), ("hr", 1, 90, 90), ("ops", 2, 120, 60)]
        query = select((e.dept, avg(e.salary)) for e in Emp if count(e) > 1 and e.salary > 50)
        sql = query.sql()[0]
        assert "GROUP BY" in sql and "HAVING" in sql
        assert sorted(query) == [("eng", 90.0), ("ops", 60.0)]
        assert select((e.hired.year, count(e)) for e in Emp).order_by(-2, 1)[:1] == [(2020, 2)]


def test_order_by_positions_values_and_random(Emp: Any) -> None:
    """order_by(1)/order_by(-2), desc() of values, lambdas over tuples, random()."""
    with db_session:
        assert select((e.dept, e.salary) for e in Emp).order_by(1, -2)[:] == [
            ("eng", 100),
            ("eng", 80),
            ("hr", 90),
            ("ops", 60),
        ]
        by_length = Emp.select().order_by(lambda e: (desc(len(e.name)), e.name.lower()))
        assert [e.id for e in by_length] == [5, 2, 1, 3, 4]
        assert [e.id for e in Emp.select().sort_by(lambda e: -e.salary)][:2] == [1, 5]
        assert [e.id for e in Emp.select().order_by(desc(Emp.salary + Emp.id))][:2] == [1, 5]
        assert len(Emp.select().random(2)) == 2
        assert len(set(Emp.select_random(3))) == 3
        assert len(select(e.dept for e in Emp).without_distinct().random(4)) == 4
        with pytest.raises(QueryError, match="position"):
            select((e.dept, e.salary) for e in Emp).order_by(3)


def test_delete_loads_objects_or_runs_one_statement(Emp: Any, sql_log: Any) -> None:
    """delete(gen) deletes through the session (hooks run); delete(bulk=True) sends one DELETE."""
    deleted = []
    Emp.before_delete = lambda self: deleted.append(self.id)
    with db_session:
        assert delete(e for e in Emp if e.salary == 60) == 2
    assert sorted(deleted) == [3, 4]
    with db_session:
        sql_log.clear()
        assert select(e for e in Emp if e.salary > 85).delete(bulk=True) == 2
        deletes = [s for s in sql_log.statements if s.startswith("DELETE")]
        assert len(deletes) == 1 and "WHERE" in deletes[0]
    assert deleted == [3, 4]
    with db_session:
        assert ids(Emp.select()) == [2]
        with pytest.raises(QueryError, match="selects values"):
            select(e.name for e in Emp).delete()


def test_value_queries_run_awaited(adb: Any) -> None:
    """Values, aggregates and bulk deletes have awaitable forms."""

    class Item(adb.Entity):
        name = Required(str)
        price = Required(int)

    adb.generate_mapping(create_tables=True)

    async def main() -> Any:
        async with db_session:
            for i in range(4):
                Item(name=f"i{i}", price=i * 10)
        async with db_session:
            names = await select(i.name.upper() for i in Item if i.price > 5).order_by(1).afetch()
            total = await select(i.price for i in Item).asum()
            counted = await select(i.price for i in Item).acount()
            gone = await select(i for i in Item if i.price < 15).adelete(bulk=True)
            left = await Item.select().acount()
        return names, total, counted, gone, left

    assert asyncio.run(main()) == (["I1", "I2", "I3"], 60, 4, 2, 2)


def test_untranslatable_values_name_the_construct_and_line(Emp: Any) -> None:
    """What the value layer does not offer raises TranslationError naming it and the line."""
    with db_session:
        with pytest.raises(TranslationError, match=r"The function round\(\)") as info:
            select(round(e.salary) for e in Emp)  # marker: round
        # the message is the call (as Pony's); a note names the function and the line
        assert str(info.value) == "round(e.salary)"
        assert isinstance(info.value, NotImplementedError)
        assert f"line {_line_of('# marker: round')}" in info.value.__notes__[0]
        with pytest.raises(AttributeTypeError, match="Incomparable types"):
            select(e for e in Emp if e.name.upper() > 3)
        with pytest.raises(AttributeTypeError, match="lower"):
            select(e for e in Emp if e.salary.lower() == "x")


def _line_of(marker: str) -> int:
    lines = inspect.getsource(sys.modules[__name__]).splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text and "_line_of(" not in text)


def test_queries_in_a_file_that_is_not_python_as_a_whole(Emp: Any, tmp_path: Any) -> None:
    """A query run from Markdown (README examples) is read from the parenthesized expression around it."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Example\n\n```python\nrows = select((e.name, e.salary)\n"
        "              for e in Emp if e.salary > 85)[:]\nadults = Emp.select(lambda e: e.salary < 70)[:]\n```\n"
    )
    code = compile("\n" * 3 + page.read_text().split("```python\n")[1].split("```")[0], str(page), "exec")
    namespace = {"select": select, "Emp": Emp}
    with db_session:
        exec(code, namespace)
        assert sorted(namespace["rows"]) == [("  Eve", 90), ("Ann", 100)]
        assert ids(namespace["adults"]) == [3, 4]


@pytest.mark.sqlite_only
def test_sqlite_changes_the_case_of_every_unicode_letter(Emp: Any) -> None:
    """upper()/lower() on SQLite use Python's case mapping (SQLite's own knows only ASCII)."""
    with db_session:
        Emp(name="Иван", dept="ёж", salary=1, hired=datetime(2020, 1, 1))
    with db_session:
        assert select(e.name.upper() for e in Emp if e.dept.upper() == "ЁЖ")[:] == ["ИВАН"]
        assert select(e.id for e in Emp if e.name.lower() == "иван")[:] == [6]


def test_string_indexes_and_slices_take_python_bounds(Emp: Any) -> None:
    """Negative bounds count from the end and bounds may read the row (``e.name[-e.id:]``); the
    results are Python's for every row."""
    names = {i: row[0] for i, row in enumerate(EMPLOYEES, 1)}
    x, y = -2, 3

    def python(start: Any, stop: Any) -> dict[int, str]:
        return {i: name[start(i) if callable(start) else start : stop(i) if callable(stop) else stop] for i, name in names.items()}

    cases = [
        (select((e.id, e.name[-2:]) for e in Emp), python(-2, None)),
        (select((e.id, e.name[:-1]) for e in Emp), python(None, -1)),
        (select((e.id, e.name[-4:-2]) for e in Emp), python(-4, -2)),
        (select((e.id, e.name[1:-1]) for e in Emp), python(1, -1)),
        (select((e.id, e.name[x:y]) for e in Emp), python(x, y)),
        (select((e.id, e.name[e.id :]) for e in Emp), python(lambda i: i, None)),
        (select((e.id, e.name[-e.id : 5]) for e in Emp), python(lambda i: -i, 5)),
        (select((e.id, e.name[e.id : -e.id + 3]) for e in Emp), python(lambda i: i, lambda i: -i + 3)),
        (select((e.id, e.name[-e.id * 2 : -e.id]) for e in Emp), python(lambda i: -2 * i, lambda i: -i)),
        (select((e.id, e.name[1 : e.salary]) for e in Emp), python(1, lambda i: EMPLOYEES[i - 1][2])),
    ]
    with db_session:
        for query, expected in cases:
            assert dict(query[:]) == expected
        assert dict(select((e.id, e.name[-1]) for e in Emp)[:]) == {i: n[-1] for i, n in names.items()}
        # past the start: '' where Python raises IndexError
        assert dict(select((e.id, e.name[-e.id - 3]) for e in Emp)[:]) == {
            i: n[-i - 3] if i + 3 <= len(n) else "" for i, n in names.items()
        }
        assert sorted(select(e.id for e in Emp if e.name[-2:] == "nn")) == [1]
        assert sorted(select(e.id for e in Emp if e.name[-e.id] == "n")) == [1]
        assert sorted(select(e.id for e in Emp if e.name.upper()[-1:] == "N")) == [1]


def test_bad_string_bounds_name_the_value(Emp: Any) -> None:
    """A float bound or a bound of a str value is a QueryError naming its type and the slice as written."""
    with db_session:
        with pytest.raises(
            QueryError, match=r"^Invalid type of start index \(expected 'int', got 'str'\) in string slice e\.name\[e\.dept:\]"
        ):
            select(e.name[e.dept :] for e in Emp)[:]
        with pytest.raises(
            QueryError, match=r"^Invalid type of stop index \(expected 'int', got 'float'\) in string slice e\.name\[:1\.5\]"
        ):
            select(e.name[:1.5] for e in Emp)[:]
        with pytest.raises(AttributeTypeError, match=r"takes a str value, got int: Emp\.salary"):
            select(e.salary[-1:] for e in Emp)[:]


def test_in_between_strings_of_the_query_and_of_the_scope(Emp: Any) -> None:
    """``e.dept in "engineering"`` (a column inside a str) and ``e.name[-1:] in e.dept`` (two values)."""
    text = "engineering or hr"
    with db_session:
        assert ids(select(e for e in Emp if e.dept in text)) == [1, 2, 5]
        assert ids(select(e for e in Emp if e.dept not in text)) == [3, 4]
        assert ids(select(e for e in Emp if e.name.lower()[-1:] in e.dept)) == [1]
        assert ids(select(e for e in Emp if e.name.strip()[1:] in e.name)) == [1, 2, 3, 4, 5]
        assert ids(select(e for e in Emp if "e" in e.name[1:])) == [4, 5]
        assert ids(select(e for e in Emp if e.name[:1] in "ABC")) == [1, 3]
        with pytest.raises(TranslationError, match="`in` on this value"):
            select(e for e in Emp if e.salary in e.name.lower())[:]


def test_dates_compare_with_datetime_attributes_as_their_midnight(Emp: Any) -> None:
    """``e.hired >= date(2021, 7, 1)`` compares with 2021-07-01 00:00 (Python would refuse it)."""
    with db_session:
        assert ids(select(e for e in Emp if e.hired >= date(2021, 7, 1))) == [2, 4]
        assert ids(select(e for e in Emp if e.hired < date(2020, 3, 5))) == [1, 3]
        assert ids(Emp.select(Emp.hired.in_([date(2022, 11, 30)]))) == [4]


def test_int_float_and_str_convert_values(Emp: Any) -> None:
    """``int()``, ``float()`` and ``str()`` of a query's values are SQL casts."""
    with db_session:
        assert select(str(e.salary) + "!" for e in Emp if e.id == 1).first() == "100!"
        assert select(float(e.salary) / 8 for e in Emp if e.id == 1).first() == 12.5
        assert select(int(e.name[-1:] + "7") * 2 for e in Emp if e.dept == "ZZ").first() is None
        assert select(int(str(e.salary) + "1") for e in Emp if e.id == 1).first() == 1001
        with pytest.raises(TranslationError, match=r"int\(\) in a query takes one value"):
            select(int(e.name, 16) for e in Emp)[:]


def test_truth_of_computed_values_is_pythons(Emp: Any) -> None:
    """``if e.name[3:]`` is a non-empty string, ``if e.salary - 60`` a non-zero number."""
    with db_session:
        assert ids(select(e for e in Emp if e.name[3:])) == [2, 5]
        assert ids(select(e for e in Emp if not e.salary - 60)) == [3, 4]


def test_negated_truth_of_a_column_reads_is_null_or_empty(db: Database) -> None:
    """``not p.age`` is ``age IS NULL OR age = 0`` (the rows Python's test keeps); a NOT NULL column
    of the query's own rows is compared with 0 or '' alone, a subclass's column is not."""

    class Item(db.Entity):
        id = PrimaryKey(int)
        qty = Required(int)
        age = Optional(int)
        note = Optional(str)

    class Special(Item):
        level = Required(int)

    db.generate_mapping(create_tables=True)
    with db_session:
        Item(id=1, qty=0, age=None, note=None)
        Item(id=2, qty=3, age=0, note="")
        Item(id=3, qty=5, age=7, note="x")
        Special(id=4, qty=1, age=1, note="y", level=0)
        assert ids(select(i for i in Item if not i.age)) == [1, 2]
        assert "IS NULL OR" in db.last_sql
        assert ids(select(i for i in Item if i.age)) == [3, 4]
        assert ids(select(i for i in Item if not i.note)) == [1, 2]
        assert ids(select(i for i in Item if not i.qty)) == [1]
        assert "IS NULL" not in db.last_sql
        assert ids(select(i for i in Item if i.qty)) == [2, 3, 4]
        assert ids(select(i for i in Item if not (i.qty and i.age))) == [1, 2]
        assert ids(select(s for s in Special if not s.level)) == [4]
        assert ids(select(i for i in Item if not i.age - 7)) == [1, 3]  # NULL - 7 is NULL: false


def test_a_collection_as_a_function_argument_is_refused(db: Database) -> None:
    """``concat(g.number, g.members)``: a TranslationError naming the function and the query."""
    from nextorm import Set

    class Team(db.Entity):
        number = PrimaryKey(int)
        members = Set("Member")

    class Member(db.Entity):
        team = Required(Team)

    db.generate_mapping(create_tables=True)
    with db_session, pytest.raises(TranslationError, match=r"concat\(\) takes values, not a collection.*concat\(g\.number"):
        select(concat(g.number, g.members) for g in Team)[:]


def test_power_is_a_float_on_both_databases(Emp: Any) -> None:
    """``**`` computes power() as a float (SQLite's connections get the function from nextorm)."""
    with db_session:
        assert ids(select(e for e in Emp if e.salary**2 > 8000)) == [1, 5]
        assert ids(select(e for e in Emp if 2 ** (e.id + 1) == 16.0)) == [3]
        assert ids(select(e for e in Emp if (e.salary - 44) ** 0.5 == 6)) == [2]
        assert sorted(select(e.salary**2 for e in Emp if e.salary < 90)) == [3600.0, 6400.0]
        assert sorted(select(e.id ** -1 for e in Emp if e.id < 3)) == [0.5, 1.0]
        # a power without a real value (a negative number's square root) fails on both databases
        with pytest.raises(DatabaseError):
            select((e.id - 3) ** 0.5 for e in Emp if e.id == 1)[:]
        with pytest.raises(QueryError, match=r"^Unsupported operand types 'str' and 'int' for operation '\*\*' in expression: e\.name \*\* 2"):
            select(e for e in Emp if e.name**2 > 1)


def test_conditional_expressions_are_case_when(Emp: Any) -> None:
    """``a if cond else b`` selects and compares as SQL's CASE WHEN, on both databases."""
    with db_session:
        values = select((e.id, e.salary if e.dept == "eng" else -e.salary) for e in Emp)
        assert sorted(values) == [(1, 100), (2, 80), (3, -60), (4, -60), (5, -90)]
        assert ids(select(e for e in Emp if (e.salary if e.born else 0) > 70)) == [1, 5]
        assert ids(select(e for e in Emp if ("old" if e.born.year < 1990 else "new") == "old")) == [3]
        assert sorted(select(e.name.strip() if e.id < 3 else None for e in Emp), key=str) == ["Ann", None, "bob"]
        flag = True
        # a condition from the scope picks its branch before the query runs
        assert ids(select(e for e in Emp if (e.salary if flag else e.id) == 60)) == [3, 4]
        assert "CASE" not in select(e.salary if flag else e.id for e in Emp).sql()[0]
        assert "CASE WHEN" in select(e.salary if e.born else e.id for e in Emp).sql()[0]
        with pytest.raises(AttributeTypeError, match="'int' and 'str', which do not mix"):
            select(e.salary if e.born else e.name for e in Emp)[:]


def test_selecting_a_condition_gives_its_truth(Emp: Any) -> None:
    """``select(e.name.startswith('A') for e in Emp)`` selects True or False of each row."""
    with db_session:
        assert sorted(select((e.id, e.name.startswith("A")) for e in Emp)) == [
            (1, True), (2, False), (3, False), (4, False), (5, False)
        ]
        assert set(select(e.salary > 70 and e.dept == "eng" for e in Emp)) == {True, False}


def test_count_of_rows_in_selections_and_conditions(Emp: Any) -> None:
    """``count()`` and ``count('*')`` count the query's rows (``distinct`` does not apply to rows)."""
    with db_session:
        assert select(count("*", distinct=True) for e in Emp)[:] == [5]
        assert "DISTINCT" not in select(count("*", distinct=True) for e in Emp).sql()[0].partition(" ")[2]
        assert sorted(select((e.dept, count()) for e in Emp)) == [("eng", 2), ("hr", 1), ("ops", 2)]
        assert ids(select(e for e in Emp if e.dept == "ops" if count() > 0)) == [3, 4]
        assert select(e for e in Emp if e.dept == "xx" if count("*") > 0)[:] == []
