"""Pony's query syntax (README "Queries in Pony's syntax"): generators, lambdas and query text.

Every form must compile to the statement its attribute-expression form builds, with the values
bound as parameters, and anything the expression layer cannot express must raise
``TranslationError`` naming the construct and its line.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import linecache
import sys
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest

import nextorm
import test_queries
from nextorm import (
    AsyncDatabase,
    ExprEvalError,
    Optional,
    QueryError,
    Required,
    Set,
    TranslationError,
    UnknownAttributeError,
    UnsupportedQueryError,
    between,
    count,
    db_session,
    desc,
    exists,
    get,
    make_proxy,
    select,
)
from nextorm import translator as translator_module
from test_queries import PEOPLE, names, names_where

LIMIT_AGE = 30  # read by queries as a global
people = test_queries.people  # the PEOPLE rows as Person objects (a fixture)


def line_of(marker: str) -> int:
    """The line of this file holding ``marker`` (a query whose error must name its line)."""
    lines = inspect.getsource(sys.modules[__name__]).splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text and "line_of(" not in text)


# -- the forms compile to the expression form's statement -------------------------------------------


def test_generator_lambda_and_text_build_the_expression_statement(people) -> None:
    """``select(gen)``, ``Entity.select(lambda)`` and query text give the statement of ``Entity.select(expr)``."""
    P = people
    low, high = 20, 40
    with db_session:
        expected = P.select((P.age > low) & (P.age < high)).sql()
        assert select(p for p in P if p.age > low and p.age < high).sql() == expected
        assert P.select(lambda p: p.age > low and p.age < high).sql() == expected
        assert select("p for p in P if p.age > low and p.age < high").sql() == expected
        refined = P.select(P.age > low).filter(P.age < high).sql()
        assert P.select().filter(lambda p: p.age > low).filter("lambda p: p.age < high").sql() == refined
        assert select(p for p in P if p.age > low).where("p.age < high").sql() == refined
        assert select(p for p in P if p.age > low).where(lambda: p.age < high).sql() == refined  # noqa: F821


@pytest.mark.parametrize(
    ("query", "expression", "expected"),
    [
        (lambda P, v: (p for p in P if p.age == v.age), lambda P, v: P.age == v.age, names_where(lambda n, e, a, s: a == 25)),
        (lambda P, v: (p for p in P if p.age != v.age), lambda P, v: P.age != v.age, names_where(lambda n, e, a, s: a != 25)),
        (lambda P, v: (p for p in P if v.age < p.age), lambda P, v: P.age > v.age, names_where(lambda n, e, a, s: a > 25)),
        (lambda P, v: (p for p in P if p.age <= v.age), lambda P, v: P.age <= v.age, names_where(lambda n, e, a, s: a <= 25)),
        (lambda P, v: (p for p in P if 20 < p.age < 30), lambda P, v: (P.age > 20) & (P.age < 30), names_where(lambda n, e, a, s: 20 < a < 30)),
        (lambda P, v: (p for p in P if p.age in v.ages), lambda P, v: P.age.in_(v.ages), names_where(lambda n, e, a, s: a in (19, 60))),
        (lambda P, v: (p for p in P if p.age not in v.ages), lambda P, v: P.age.not_in(v.ages), names_where(lambda n, e, a, s: a not in (19, 60))),
        (lambda P, v: (p for p in P if p.email is None), lambda P, v: P.email.is_(None), ["Bob", "Dee"]),
        (lambda P, v: (p for p in P if p.email is not None and p.age > 40), lambda P, v: P.email.is_not(None) & (P.age > 40), ["Cid", "a_b", "axb"]),
        (lambda P, v: (p for p in P if p.name.startswith("a")), lambda P, v: P.name.startswith("a"), ["ann", "a_b", "axb"]),
        (lambda P, v: (p for p in P if p.name.endswith("nn")), lambda P, v: P.name.endswith("nn"), ["Ann", "ann"]),
        (lambda P, v: (p for p in P if "%" in p.name), lambda P, v: P.name.contains("%"), ["Fay%"]),
        (lambda P, v: (p for p in P if "n" not in p.name), lambda P, v: ~P.name.contains("n"), names_where(lambda n, e, a, s: "n" not in n)),
        (lambda P, v: (p for p in P if p.age < 20 or p.age > 50), lambda P, v: (P.age < 20) | (P.age > 50), ["ann", "axb"]),
        (lambda P, v: (p for p in P if not (p.age < 50)), lambda P, v: ~(P.age < 50), ["a_b", "axb"]),
        (lambda P, v: (p for p in P if between(p.age, 30, 35)), lambda P, v: between(P.age, 30, 35), ["Ann", "Eve", "Hal"]),
        (lambda P, v: (p for p in P if p.age > LIMIT_AGE), lambda P, v: P.age > LIMIT_AGE, names_where(lambda n, e, a, s: a > 30)),
        (lambda P, v: (p for p in P if p.age > 25 if p.age < 30), lambda P, v: (P.age > 25) & (P.age < 30), ["Gus", "Ivy"]),
    ],
    ids=["eq", "ne", "reflected", "le", "chained", "in", "not-in", "is-none", "is-not-none",
         "startswith", "endswith", "in-string", "not-in-string", "or", "not", "between", "global", "two-ifs"],
)  # fmt: skip
def test_generator_query_matches_its_expression_form(people, query, expression, expected) -> None:
    """A generator query builds its expression form's statement and selects the same rows."""
    P = people
    scope = SimpleNamespace(age=25, ages=[19, 60])
    with db_session:
        generated = select(query(P, scope))
        assert generated.sql() == P.select(expression(P, scope)).sql()
        assert names(generated.order_by(P.id)) == expected


def test_values_are_bound_parameters(people) -> None:
    """A value from the enclosing scope is a parameter, never part of the SQL text."""
    P = people
    evil = "Ann' OR '1'='1"
    with db_session:
        sql, params = select(p for p in P if p.name == evil).sql()
        assert evil not in sql and params == [evil]
        assert list(select(p for p in P if p.name == evil)) == []


def test_closures_locals_globals_and_object_attributes(people) -> None:
    """Locals, closure cells, globals and attributes of objects are read at each run."""
    P = people

    def older_than(age: int) -> list[str]:
        def inner() -> list[str]:
            return names(select(p for p in P if p.age > age).order_by(P.id))

        return inner()

    class Filter:
        def __init__(self, age: int) -> None:
            self.age = age

        def query(self) -> Any:
            return P.select(lambda p: p.age >= self.age)

    with db_session:
        assert older_than(45) == ["a_b", "axb"]
        assert older_than(55) == ["axb"]  # the same code object, a new value
        assert names(Filter(50).query().order_by(P.id)) == ["a_b", "axb"]
        assert names(select(p for p in P if p.age > LIMIT_AGE + 15).order_by(P.id)) == ["a_b", "axb"]


def test_external_values_keep_pythons_short_circuit(people) -> None:
    """``x is not None and p.age == x.age`` does not read ``x.age`` when x is None."""
    P = people
    with db_session:
        for template, expected in ((None, 12), (SimpleNamespace(age=25), 2)):
            query = select(p for p in P if template is None or p.age == template.age)
            assert query.count() == expected
        for flag, expected in ((True, 12), (False, 0)):
            assert select(p for p in P if flag).count() == expected


def test_get_exists_count_and_entity_methods(people) -> None:
    """``get``, ``exists`` and ``count`` of a generator, and ``Entity.get/exists`` with a lambda."""
    P = people
    with db_session:
        assert get(p for p in P if p.name == "Cid").age == 41
        assert get(p for p in P if p.name == "Nobody") is None
        assert exists(p for p in P if p.age > 55) and not exists(p for p in P if p.age > 99)
        assert count(p for p in P if p.age == 25) == 2
        assert count("p for p in P if p.age == 25") == 2
        assert next(count(5)) == 5  # anything but a query: itertools.count
        assert names(select(p for p in P).order_by(P.id).limit(offset=10)) == ["Hal", "Ivy"]
        assert names(select(p for p in P).order_by(P.id).page(3, 5)) == ["Hal", "Ivy"]
        assert names(select(p for p in P).order_by(P.id).page(2)) == ["Hal", "Ivy"]  # 10 a page
        with pytest.raises(QueryError, match="page number from 1, got 0"):
            P.select().page(0)
        assert P.get(lambda p: p.email == "eve@x").name == "Eve"
        assert P.exists(lambda p: p.age == 19)
        with pytest.raises(nextorm.MultipleObjectsFoundError):
            get(p for p in P if p.age == 25)


def test_order_by_and_sort_by_lambdas(people) -> None:
    """``order_by(lambda p: ...)`` with ``desc()``, ``-attr``, ``.desc()`` and tuples; ``sort_by`` is the same."""
    P = people
    with db_session:
        expected = P.select().order_by(P.age, desc(P.name)).sql()
        assert P.select().order_by(lambda p: (p.age, desc(p.name))).sql() == expected
        assert P.select().order_by(lambda p: (p.age, -p.name)).sql() == expected
        assert P.select().sort_by(lambda p: (p.age, p.name.desc())).sql() == expected
        assert P.select().order_by("lambda p: (p.age, desc(p.name))").sql() == expected
        assert names(P.select(lambda p: p.age > 40).order_by(lambda p: desc(p.age))) == ["axb", "a_b", "Cid"]


def test_entities_and_proxies_compare_by_key(people) -> None:
    """``p == obj`` and ``p != obj`` compare primary keys; a proxy stands for its object."""
    P = people
    with db_session:
        cid = P.get(name="Cid")
        proxy = make_proxy(cid)
        assert select(p for p in P if p == cid).sql() == P.select(P.id == cid.id).sql()
        assert list(select(p for p in P if p == proxy)) == [cid]
        assert cid not in list(select(p for p in P if p != cid))
        assert count(p for p in P if p != cid) == len(PEOPLE) - 1
        assert list(select(p for p in P if p == None)) == []  # noqa: E711
        ann = P.get(name="Ann")
        assert names(select(p for p in P if p in [cid, make_proxy(ann)]).order_by(P.id)) == ["Ann", "Cid"]
        assert count(p for p in P if p not in (cid, ann)) == len(PEOPLE) - 2
        with pytest.raises(TranslationError, match="can only be compared with a Person object, got 3"):
            select(p for p in P if p in [3])


def test_query_over_a_query_filters_it(people) -> None:
    """``select(x for x in q if ...)`` refines ``q``; building the generator runs no SQL."""
    P = people
    with db_session:
        adults = select(p for p in P if p.age >= 30)
        assert names(select(x for x in adults if x.age < 40).order_by(P.id)) == ["Ann", "Eve", "Hal"]
        first_three = adults.order_by(P.id).limit(3)
        assert names(select(x for x in first_three if x.age < 40).order_by(P.id)) == ["Ann", "Eve"]
        assert names(select(x for x in adults.order_by(P.id).limit(None, offset=1) if x.age > 50)) == ["axb"]


def test_iterating_an_entity_in_a_generator_runs_no_sql(people, sql_log) -> None:
    """``(p for p in Person)`` fetches nothing until the query runs; ``list(Person)`` still loads all."""
    P = people
    with db_session:
        sql_log.clear()
        query = select(p for p in P if p.age > 50)
        assert sql_log.statements == []
        assert names(query) == ["axb"]
        assert len(list(P)) == len(PEOPLE)


def test_references_compare_with_objects(db) -> None:
    """A reference attribute compared with an object or a key selects its rows."""

    class Group(db.Entity):
        name = Required(str)
        students = Set("Student")

    class Student(db.Entity):
        name = Required(str)
        group = Optional(Group)

    db.generate_mapping(create_tables=True)
    with db_session:
        g1, g2 = Group(name="g1"), Group(name="g2")
        Student(name="s1", group=g1)
        Student(name="s2", group=g2)
        Student(name="s3")
    with db_session:
        g1 = Group.get(name="g1")
        assert names(select(s for s in Student if s.group == g1)) == ["s1"]
        assert names(select(s for s in Student if s.group is None)) == ["s3"]
        assert names(Student.select(lambda s: s.group != g1 and s.group is not None)) == ["s2"]
        assert names(select(s for s in Student if s.group.name == "g1")) == ["s1"]
        assert names(select(g for g in Group if g.students).order_by(Group.name)) == ["g1", "g2"]


def test_async_queries_run_awaited(adb: AsyncDatabase) -> None:
    """A generator query on an AsyncDatabase is awaited like any query."""

    class Item(adb.Entity):
        name = Required(str)
        price = Required(int)

    adb.generate_mapping(create_tables=True)

    async def main() -> list[str]:
        async with db_session:
            for i in range(5):
                Item(name=f"i{i}", price=i * 10)
        async with db_session:
            limit = 20
            query = select(i for i in Item if i.price > limit).order_by(Item.id)
            return [i.name for i in await query.afetch()]

    assert asyncio.run(main()) == ["i3", "i4"]


# -- what is not translated ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("p for p in P if p.age << 2 > 3", "The operator LShift"),
        ("p for p in P if p.name.title() == 'Ann'", r"The method title\(\)"),
        ("p for p in P if f'{p.age:3}' == ' 30'", "You cannot set width and precision for f-string"),
        ("p for p in P if f'{p.name!r}' == 'Ann'", "You cannot specify conversion type for f-string"),
        ("p for p in P for q in P if p.age == 1 for r in q.name", "^for r in q.name\n"),
        ("p for p in P if p.age in 'abc'", "`in` over a string value"),
        ("p for p in P if round(p.score)", r"^round\(p.score\)\nThe function round\(\)"),
    ],
)
def test_untranslatable_constructs_name_the_construct(people, text: str, construct: str) -> None:
    """Each construct the expression layer lacks raises TranslationError naming it and the query."""
    P = people  # noqa: F841 - the query text reads it
    with db_session, pytest.raises(TranslationError, match=construct) as info:
        select(text)
    assert isinstance(info.value, QueryError)
    assert isinstance(info.value, UnsupportedQueryError) or "`in`" in construct
    # where a message keeps Pony's wording, the query's location is in a note
    assert "query text" in "\n".join([str(info.value), *getattr(info.value, "__notes__", [])])


def test_started_generators_and_other_values_are_refused(people) -> None:
    """select() takes a generator expression that has not run, or query text; nothing else."""
    P = people
    with db_session:
        started = (p for p in P if p.age > 50)
        next(started)
        with pytest.raises(TranslationError, match="has not started"):
            select(started)
        with pytest.raises(TranslationError, match="generator expression"):
            select([1, 2])
        with pytest.raises(TranslationError, match="can only iterate over entity or another query"):
            select(p for p in [1, 2] if p > 1)
        with pytest.raises(TranslationError, match="must iterate over an entity or a query"):
            select(p for p in {1, 2} if p > 1)
        numbers = [1, 2]
        with pytest.raises(TranslationError, match="Cannot iterate over non-entity object numbers"):
            select("p for p in numbers if p > 1")


def test_untranslatable_generator_names_its_line(people) -> None:
    """The error for a generator in a source file names the construct, the line and the file."""
    P = people
    with db_session, pytest.raises(TranslationError) as info:
        select(p for p in P if p.age << 2 > 50)  # marker: shift
    assert f"line {line_of('# marker: shift')} of {__file__}" in str(info.value)
    assert "`p.age << 2`" in str(info.value)


def test_unknown_attribute_and_failing_values(people) -> None:
    """An unknown attribute raises UnknownAttributeError; a failing scope value raises ExprEvalError."""
    P = people
    nothing = None
    with db_session:
        with pytest.raises(UnknownAttributeError, match="Entity Person has no attribute 'nickname'"):
            select(p for p in P if p.nickname == "x")
        with pytest.raises(ExprEvalError, match="AttributeError"):
            select(p for p in P if p.age == nothing.age)


def test_source_unavailable_says_to_use_text_or_expressions(people) -> None:
    """Code whose source cannot be read (as at a plain interactive prompt) gets the string-form hint."""
    P = people
    code = compile("select(p for p in P if p.age > 3)", "<stdin>", "eval")
    with db_session, pytest.raises(TranslationError, match=r"not available.*as a string.*attribute"):
        eval(code, {"select": select, "P": P})


def test_changed_source_file_is_refused(people, tmp_path, monkeypatch) -> None:
    """A source file changed after import does not match the code: refused, never guessed."""
    P = people
    module_file = tmp_path / "changed_queries.py"
    module_file.write_text("def query(select, P):\n    return select(p for p in P if p.age > 3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("changed_queries")
    module_file.write_text("def query(select, P):\n    return select(p for p in P if p.name > 'x')\n")
    linecache.checkcache(str(module_file))
    with db_session, pytest.raises(TranslationError, match="does not match the running code"):
        module.query(select, P)
    sys.modules.pop("changed_queries")


def test_translation_is_cached_per_code_object(people, monkeypatch) -> None:
    """A repeated query reads its source once: later runs only bind new values."""
    P = people
    located = []
    real_locate = translator_module._locate

    def counting_locate(*args: Any) -> Any:
        located.append(args[0])
        return real_locate(*args)

    monkeypatch.setattr(translator_module, "_locate", counting_locate)
    with db_session:
        results = [select(p for p in P if p.age > age).count() for age in (20, 30, 40)]
    assert results == [11, 5, 3]
    assert len(located) == 1


def test_translated_text_source_in_a_module(people, tmp_path, monkeypatch) -> None:
    """A query in an imported module (not a test file) translates from that module's source."""
    P = people
    (tmp_path / "shop_queries.py").write_text(
        textwrap.dedent(
            """
            from nextorm import select

            def adults(P, age=18):
                return select(
                    p for p in P
                    if p.age >= age
                    and p.email is not None
                )
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("shop_queries")
    with db_session:
        assert module.adults(P, 50).count() == 2
        assert module.adults(P).sql() == P.select((P.age >= 18) & (P.email != None)).sql()  # noqa: E711
    sys.modules.pop("shop_queries")


def _text_query_with_global_limit(P: Any) -> Any:
    """The text query reading LIMIT_AGE from this module's globals."""
    return select("p for p in P if p.age > LIMIT_AGE")


def test_text_query_reads_each_callers_scope(people) -> None:
    """The same query text reads a local in one caller and a global in another; unknown names raise."""
    P = people
    LIMIT_AGE = 50  # noqa: F841 - the query text reads this local, not the global
    with db_session:
        assert names(select("p for p in P if p.age > LIMIT_AGE")) == ["axb"]
        assert _text_query_with_global_limit(P).count() == 5
        with pytest.raises(ExprEvalError, match="'undefined_name' is not defined"):
            select("p for p in P if p.age > undefined_name")


def test_a_condition_that_is_no_condition_names_what_a_query_takes(people) -> None:
    """``Person.select(123)``: a QueryError (also a TypeError) naming the value and what is taken."""
    P = people
    with db_session, pytest.raises(TypeError, match=r"^The first positional argument must be lambda function or its text source\. Got: 123\n.*attribute expression") as info:
        P.select(123)
    assert isinstance(info.value, QueryError)
