"""Queries: filters and expression operators, ordering, slicing, counting, raw SQL, bound values."""

from __future__ import annotations

import sqlite3

import pytest

from nextorm import (
    AttributeTypeError,
    MultipleObjectsFoundError,
    Optional,
    OrmError,
    PrimaryKey,
    Query,
    Required,
    UnknownAttributeError,
    ValidationError,
    db_session,
    desc,
    flush,
)

try:
    import psycopg
except ImportError:  # PostgreSQL support is an extra
    psycopg = None

#: what a driver raises for a constraint violation
DRIVER_INTEGRITY_ERRORS: tuple[type[BaseException], ...] = (sqlite3.IntegrityError,) + (
    (psycopg.IntegrityError,) if psycopg is not None else ()
)

PEOPLE = [
    # name, email, age, score
    ("Ann", "ann@x", 30, 1.0),
    ("Bob", None, 25, 2.0),
    ("Cid", "cid@x", 41, 3.0),
    ("Dee", None, 25, 4.0),
    ("ann", "ann2@x", 19, 5.0),
    ("Eve", "eve@x", 35, 6.0),
    ("a_b", "ab@x", 50, 7.0),
    ("axb", "axb@x", 60, 8.0),
    ("Fay%", "fay@x", 22, 9.0),
    ("Gus", "gus@x", 28, 10.0),
    ("Hal", "hal@x", 33, 11.0),
    ("Ivy", "ivy@x", 27, 12.0),
]


@pytest.fixture
def people(Person):  # type: ignore[no-untyped-def]
    """The PEOPLE rows stored as Person objects with ids 1..12; returns the entity."""
    with db_session:
        for name, email, age, score in PEOPLE:
            Person(name=name, email=email, age=age, score=score)
    return Person


def names(objects) -> list[str]:  # type: ignore[no-untyped-def]
    """The names of ``objects`` in order."""
    return [p.name for p in objects]


def names_where(predicate) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of PEOPLE rows (in id order) whose (name, email, age, score) satisfy ``predicate``."""
    return [row[0] for row in PEOPLE if predicate(*row)]


# -- filters and operators ----------------------------------------------------------------------


def test_keyword_filters_are_anded(people) -> None:
    """``select(age=25, email=None)`` matches rows satisfying every keyword."""
    P = people
    with db_session:
        assert names(P.select(age=25).order_by(P.id)) == ["Bob", "Dee"]
        assert names(P.select(age=25, name="Dee")) == ["Dee"]
        assert names(P.select(name="Nobody")) == []


def test_keyword_and_expression_filters_combine(people) -> None:
    """Positional conditions and keywords in one select() are ANDed."""
    P = people
    with db_session:
        assert names(P.select(P.age > 20, email=None).order_by(P.id)) == ["Bob", "Dee"]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda P: P.age == 25, names_where(lambda n, e, a, s: a == 25)),
        (lambda P: P.age != 25, names_where(lambda n, e, a, s: a != 25)),
        (lambda P: P.age < 25, names_where(lambda n, e, a, s: a < 25)),
        (lambda P: P.age <= 25, names_where(lambda n, e, a, s: a <= 25)),
        (lambda P: P.age > 35, names_where(lambda n, e, a, s: a > 35)),
        (lambda P: P.age >= 35, names_where(lambda n, e, a, s: a >= 35)),
        (lambda P: P.score > 11.5, names_where(lambda n, e, a, s: s > 11.5)),
        (lambda P: P.name < "B", names_where(lambda n, e, a, s: n < "B")),
        (lambda P: P.age.in_([25, 30, 99]), names_where(lambda n, e, a, s: a in (25, 30, 99))),
        (lambda P: P.age.in_((19,)), ["ann"]),
        (lambda P: P.name.in_({"Ann", "Eve"}), ["Ann", "Eve"]),
        (lambda P: P.age.in_([]), []),
        (lambda P: ~P.age.in_([]), [row[0] for row in PEOPLE]),
        (lambda P: P.email.is_(None), ["Bob", "Dee"]),
        (lambda P: P.email == None, ["Bob", "Dee"]),  # noqa: E711
        (lambda P: P.email != None, names_where(lambda n, e, a, s: e is not None)),  # noqa: E711
        (lambda P: ~P.email.is_(None), names_where(lambda n, e, a, s: e is not None)),
        (lambda P: P.name.startswith("A"), ["Ann"]),
        (lambda P: P.name.startswith("a"), ["ann", "a_b", "axb"]),
        (lambda P: P.name.endswith("nn"), ["Ann", "ann"]),
        (lambda P: P.name.endswith("N"), []),
        (lambda P: P.name.contains("n"), ["Ann", "ann"]),
        (lambda P: P.name.contains("_"), ["a_b"]),
        (lambda P: P.name.contains("%"), ["Fay%"]),
        (lambda P: P.name.startswith("a_"), ["a_b"]),
        (lambda P: P.name.startswith(""), [row[0] for row in PEOPLE]),
        (lambda P: P.name.endswith("y%"), ["Fay%"]),
        (lambda P: (P.age > 20) & (P.age < 30), names_where(lambda n, e, a, s: 20 < a < 30)),
        (lambda P: (P.age < 20) | (P.age > 50), names_where(lambda n, e, a, s: a < 20 or a > 50)),
        (lambda P: ~(P.age == 25), names_where(lambda n, e, a, s: a != 25)),
        (
            lambda P: ((P.age < 26) | (P.age > 40)) & ~P.email.is_(None),
            names_where(lambda n, e, a, s: (a < 26 or a > 40) and e is not None),
        ),
        (lambda P: (P.name == "Ann") | (P.name == "ann") & (P.age > 20), ["Ann"]),
    ],
    ids=[
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "float-gt",
        "str-lt",
        "in-list",
        "in-tuple",
        "in-set",
        "in-empty",
        "not-in-empty",
        "is-none",
        "eq-none",
        "ne-none",
        "not-is-none",
        "startswith-case",
        "startswith-lower",
        "endswith",
        "endswith-case",
        "contains-case",
        "contains-underscore-literal",
        "contains-percent-literal",
        "startswith-underscore-literal",
        "startswith-empty",
        "endswith-percent-literal",
        "and",
        "or",
        "not",
        "nested",
        "precedence",
    ],
)
def test_expression_operators(people, make, expected) -> None:
    """Each expression operator selects exactly the rows Python's semantics would."""
    P = people
    with db_session:
        assert names(P.select(make(P)).order_by(P.id)) == expected


def test_eq_none_is_sql_is_null(Person, sql_log) -> None:
    """``attr == None`` is sent as IS NULL, ``attr != None`` as IS NOT NULL, with no bound value."""
    with db_session:
        sql_log.clear()
        Person.select(Person.email == None).fetch()  # noqa: E711
        Person.select(Person.email != None).fetch()  # noqa: E711
    statements = [s for s in sql_log.statements if s.startswith("SELECT")]
    assert statements[0].endswith('WHERE "email" IS NULL')
    assert statements[1].endswith('WHERE "email" IS NOT NULL')


def test_keyword_none_filter_is_is_null(people) -> None:
    """``select(email=None)`` matches rows whose column is NULL."""
    P = people
    with db_session:
        assert names(P.select(email=None).order_by(P.id)) == ["Bob", "Dee"]


def test_string_operators_are_case_sensitive_for_non_ascii(Person) -> None:
    """startswith/contains/endswith match case-sensitively beyond ASCII too."""
    with db_session:
        Person(name="Élan")
        Person(name="élan")
        assert names(Person.select(Person.name.startswith("É"))) == ["Élan"]
        assert names(Person.select(Person.name.contains("é"))) == ["élan"]
        assert names(Person.select(Person.name.endswith("lan")).order_by(Person.id)) == ["Élan", "élan"]


def test_condition_value_of_wrong_type_is_rejected(Person) -> None:
    """A condition value the attribute would not accept raises AttributeTypeError naming the attribute."""
    with pytest.raises(AttributeTypeError, match=r"Person\.age"):
        Person.age == "thirty"  # noqa: B015
    with pytest.raises(AttributeTypeError, match=r"Person\.age"):
        Person.age.in_([1, "two"])


def test_condition_value_kept_by_its_checks_is_bound_without_validation(Person, monkeypatch) -> None:
    """``attr == value`` and ``!=`` with a value of the column's own type that its checks keep as it
    is bind it as given, without the column type's validate; any other value is validated (and
    converted) as before."""
    calls: list[object] = []
    ctype = Person.age.ctype
    validate = ctype.validate
    monkeypatch.setattr(ctype, "validate", lambda value: calls.append(value) or validate(value))
    kept = [Person.age == 30, Person.age != -4]
    assert [(c.attr, c.op, c.value) for c in kept] == [(Person.age, "==", 30), (Person.age, "!=", -4)]
    assert calls == []
    converted = Person.age == "31"
    assert (converted.value, calls) == (31, ["31"])


def test_select_unknown_keyword(Person) -> None:
    """``select(nope=1)`` raises UnknownAttributeError naming the keyword."""
    with pytest.raises(UnknownAttributeError, match="Unknown attribute 'nope'"):
        Person.select(nope=1)


def test_condition_has_no_truth_value(Person) -> None:
    """A condition used as a bool (``and``/``if``) raises TypeError."""
    with pytest.raises(TypeError):
        if Person.age > 3:
            pass
    with pytest.raises(TypeError):
        _ = not (Person.age > 3)


def test_filter_refines_without_changing_the_original(people) -> None:
    """``q.filter()`` and ``q.order_by()`` return new queries; the original keeps its conditions."""
    P = people
    with db_session:
        q = P.select(P.age > 30)
        narrower = q.filter(P.age < 40)
        assert isinstance(narrower, Query)
        assert q.count() == len(names_where(lambda n, e, a, s: a > 30))
        assert narrower.count() == len(names_where(lambda n, e, a, s: 30 < a < 40))


def test_query_is_lazy(Person, sql_log) -> None:
    """Building a query sends nothing; iterating it sends one SELECT."""
    with db_session:
        sql_log.clear()
        q = Person.select(Person.age > 1).order_by(Person.name)
        assert sql_log.statements == []
        for _ in q:
            pass
        assert len(sql_log.statements) == 1


def test_list_of_query_runs_one_select(Person, sql_log) -> None:
    """``list(q)`` sends the SELECT once (not once for the length hint and again to iterate)."""
    with db_session:
        Person(name="A")
        Person(name="B")
        flush()
        q = Person.select(Person.age >= 0)
        sql_log.clear()
        assert len(list(q)) == 2
        assert len(sql_log.statements) == 1


# -- ordering -----------------------------------------------------------------------------------


def test_order_by_ascending_and_desc(people) -> None:
    """order_by(attr) sorts ascending; desc(attr) and attr.desc() descending."""
    P = people
    with db_session:
        assert names(P.select(P.age > 40).order_by(P.age)) == ["Cid", "a_b", "axb"]
        assert names(P.select(P.age > 40).order_by(desc(P.age))) == ["axb", "a_b", "Cid"]
        assert names(P.select(P.age > 40).order_by(P.age.desc())) == ["axb", "a_b", "Cid"]
        assert names(P.select(P.age > 40).order_by(desc(desc(P.age)))) == ["Cid", "a_b", "axb"]


def test_order_by_several_keys(people) -> None:
    """order_by(a, desc(b)) sorts by a, then by b descending."""
    P = people
    with db_session:
        result = P.select().order_by(P.age, desc(P.name)).fetch()
        expected = sorted(PEOPLE, key=lambda r: r[0], reverse=True)
        expected = sorted(expected, key=lambda r: r[2])
        assert names(result) == [r[0] for r in expected]
        assert names(result)[2:4] == ["Dee", "Bob"]


def test_order_by_replaces_earlier_order(people) -> None:
    """A second order_by() replaces the first."""
    P = people
    with db_session:
        q = P.select(P.age > 40).order_by(desc(P.age)).order_by(P.age)
        assert names(q) == ["Cid", "a_b", "axb"]


# -- slicing, first, count, exists, iteration ---------------------------------------------------


def test_slicing(people) -> None:
    """[:n], [a:b] and [a:] return the right window of the ordered result."""
    P = people
    all_names = [r[0] for r in PEOPLE]
    with db_session:
        q = P.select().order_by(P.id)
        assert names(q[:10]) == all_names[:10]
        assert names(q[5:10]) == all_names[5:10]
        assert names(q[10:]) == all_names[10:]
        assert names(q[3:3]) == []
        assert names(q[:0]) == []
        assert names(q[20:30]) == []


def test_slice_limits_sql(people, sql_log) -> None:
    """A slice fetches only its rows: the SELECT carries LIMIT/OFFSET."""
    P = people
    with db_session:
        sql_log.clear()
        result = P.select().order_by(P.id)[5:7]
        assert len(result) == 2
    select = next(s for s in sql_log.statements if s.startswith("SELECT"))
    assert "LIMIT" in select


def test_negative_index_and_step_are_rejected(people) -> None:
    """Negative indexes and slice steps raise TypeError rather than fetching something else."""
    P = people
    with db_session:
        q = P.select().order_by(P.id)
        with pytest.raises(TypeError):
            q[-1]
        with pytest.raises(TypeError):
            q[::2]


def test_index_and_first(people) -> None:
    """q[0], q[i] and first() return single objects; first() of nothing is None, q[i] past the end IndexError."""
    P = people
    with db_session:
        q = P.select().order_by(desc(P.age))
        assert q[0].name == "axb"
        assert q[2].name == "Cid"
        assert q.first().name == "axb"
        assert P.select(P.age > 100).first() is None
        with pytest.raises(IndexError):
            q[100]


def test_query_get(people) -> None:
    """``q.get()`` returns the only match, None, or raises MultipleObjectsFoundError."""
    P = people
    with db_session:
        assert P.select(P.age == 41).get().name == "Cid"
        assert P.select(P.age == 99).get() is None
        with pytest.raises(MultipleObjectsFoundError):
            P.select(P.age == 25).get()


def test_count_with_and_without_limit(people) -> None:
    """count() counts all matches, or only those within a limit/slice window."""
    P = people
    with db_session:
        assert P.select().count() == len(PEOPLE)
        assert P.select(P.age == 25).count() == 2
        assert P.select().limit(5).count() == 5
        assert P.select().limit(5, 10).count() == 2
        assert P.select().order_by(P.age).limit(3).count() == 3
        assert P.select(P.age > 100).count() == 0
        assert P.select().order_by(P.id)[10:] == P.select().order_by(P.id).limit(None, 10).fetch()
        assert P.select().limit(None, 10).count() == 2


def test_exists_on_query(people) -> None:
    """``q.exists()`` is True when a row matches, else False."""
    P = people
    with db_session:
        assert P.select(P.age > 55).exists() is True
        assert P.select(P.age > 100).exists() is False


def test_iteration_and_list(people) -> None:
    """Iterating a query, list(q) and ``for p in Person`` all yield every object once."""
    P = people
    with db_session:
        by_iter = sorted(p.name for p in P.select())
        by_list = sorted(names(list(P.select())))
        by_class = sorted(p.name for p in P)
        assert by_iter == by_list == by_class == sorted(r[0] for r in PEOPLE)


def test_len_of_query(people) -> None:
    """``len(q)`` is the number of matching objects (Pony code uses it)."""
    P = people
    with db_session:
        assert len(P.select(age=25)) == 2
        assert len(P.select(P.age > 100)) == 0


def test_query_results_share_identity_map(people) -> None:
    """Objects from two queries (and Entity[pk]) are the same objects."""
    P = people
    with db_session:
        first = {p.id: p for p in P.select()}
        again = {p.id: p for p in P.select(P.age > 0)}
        assert all(first[k] is again[k] for k in again)
        assert P[1] is first[1]


def test_query_sees_pending_changes(people) -> None:
    """Queries autoflush: modified and deleted objects are reflected before commit."""
    P = people
    with db_session:
        P[1].age = 99
        P[2].delete()
        assert names(P.select(P.age == 99)) == ["Ann"]
        assert P.select(name="Bob").count() == 0


# -- raw SQL ------------------------------------------------------------------------------------


def test_select_by_sql_with_caller_local(people) -> None:
    """``select_by_sql`` binds ``$name`` from the caller's local variables."""
    P = people
    min_age = 40  # noqa: F841 - read by the SQL text
    with db_session:
        result = P.select_by_sql("SELECT * FROM person WHERE age > $min_age ORDER BY id")
        assert names(result) == ["Cid", "a_b", "axb"]
        assert result[0] is P[3]


def test_select_by_sql_with_expression(people) -> None:
    """``$(expr)`` evaluates a Python expression in the caller's scope and binds its value."""
    P = people
    ages = {"min": 40}  # noqa: F841 - read by the SQL text
    with db_session:
        result = P.select_by_sql("SELECT * FROM person WHERE age > $(ages['min'] + 5) ORDER BY id")
        assert names(result) == ["a_b", "axb"]


def test_select_by_sql_with_params_dict(people) -> None:
    """``select_by_sql(sql, {'name': ...})`` binds ``$name`` from the dict."""
    P = people
    with db_session:
        result = P.select_by_sql("SELECT * FROM person WHERE age = $a ORDER BY id", {"a": 25})
        assert names(result) == ["Bob", "Dee"]


def test_select_by_sql_with_some_columns(people) -> None:
    """A raw SELECT of the pk and some columns gives objects whose other columns load on access."""
    P = people
    with db_session:
        result = P.select_by_sql("SELECT id, name FROM person WHERE id = 3")
        assert names(result) == ["Cid"]
        assert result[0].age == 41


def test_select_by_sql_maps_renamed_columns(db) -> None:
    """``select_by_sql`` maps result columns to attributes by their ``column=`` names."""

    class Member(db.Entity):
        _table_ = "members"
        nick = Required(str, column="nick_name")
        level = Required(int, column="lvl")

    db.generate_mapping(create_tables=True)
    with db_session:
        Member(nick="ace", level=3)
        Member(nick="bee", level=1)
    with db_session:
        found = Member.select_by_sql("SELECT * FROM members WHERE lvl > 2")
        assert [(m.nick, m.level) for m in found] == [("ace", 3)]
        found = Member.select_by_sql("SELECT lvl, nick_name, id FROM members ORDER BY lvl")
        assert [(m.nick, m.level) for m in found] == [("bee", 1), ("ace", 3)]


def test_get_by_sql(people) -> None:
    """``get_by_sql`` returns the one object, None, or raises MultipleObjectsFoundError."""
    P = people
    wanted = "Eve"  # noqa: F841 - read by the SQL text
    with db_session:
        assert P.get_by_sql("SELECT * FROM person WHERE name = $wanted").age == 35
        assert P.get_by_sql("SELECT * FROM person WHERE name = 'nobody'") is None
        with pytest.raises(MultipleObjectsFoundError):
            P.get_by_sql("SELECT * FROM person WHERE age = 25")


def test_db_select_one_column_gives_values(people, db) -> None:
    """``db.select`` of one column returns plain values."""
    with db_session:
        assert db.select("SELECT name FROM person WHERE age = 25 ORDER BY id") == ["Bob", "Dee"]
        assert db.select("SELECT age FROM person WHERE age > 55") == [60]


def test_db_select_several_columns_gives_named_tuples(people, db) -> None:
    """``db.select`` of several columns returns tuples with attribute access by column name."""
    limit = 26  # noqa: F841 - read by the SQL text
    with db_session:
        result = db.select("SELECT name, age FROM person WHERE age < $limit ORDER BY age, id")
        assert [tuple(r) for r in result] == [("ann", 19), ("Fay%", 22), ("Bob", 25), ("Dee", 25)]
        assert result[0].name == "ann"
        assert result[0].age == 19


def test_db_select_with_params_dict(people, db) -> None:
    """``db.select(sql, {'x': ...})`` binds from the dict, not the caller's locals."""
    a = 0  # a local of the same name must not be used
    with db_session:
        assert db.select("SELECT name FROM person WHERE age = $a", {"a": 41}) == ["Cid"]
    assert a == 0


def test_entity_as_raw_sql_parameter_binds_its_pk(people, db) -> None:
    """An entity object used as ``$obj`` in raw SQL is bound as its primary key."""
    P = people
    with db_session:
        cid = P.get(name="Cid")
        assert db.select("SELECT name FROM person WHERE id = $cid") == ["Cid"]
        assert P.select_by_sql("SELECT * FROM person WHERE id = $p", {"p": cid}) == [cid]


def test_db_get_and_exists(people, db) -> None:
    """``db.get`` returns the one row (error for none or several); ``db.exists`` a bool."""
    with db_session:
        assert db.get("SELECT name FROM person WHERE age = 41") == "Cid"
        row = db.get("SELECT name, age FROM person WHERE id = 1")
        assert (row.name, row.age) == ("Ann", 30)
        with pytest.raises(OrmError):
            db.get("SELECT name FROM person WHERE age = 999")
        with pytest.raises(OrmError):
            db.get("SELECT name FROM person WHERE age = 25")
        assert db.exists("SELECT * FROM person WHERE age = 41") is True
        assert db.exists("SELECT * FROM person WHERE age = 999") is False


def test_db_execute(people, db, other_connection) -> None:
    """``db.execute`` runs raw SQL in the session's transaction (committed at exit)."""
    who = "Bob"  # noqa: F841 - read by the SQL text
    with db_session:
        cursor = db.execute("UPDATE person SET age = age + 1 WHERE name = $who")
        assert cursor.rowcount == 1
        assert db.get("SELECT age FROM person WHERE name = 'Bob'") == 26
    assert other_connection.execute("SELECT age FROM person WHERE name = 'Bob'").fetchall() == [(26,)]


def test_db_insert_returning(Person, db, other_connection) -> None:
    """``db.insert(table, returning='id', **values)`` inserts one row and returns the named column."""
    with db_session:
        assert db.insert("person", name="Raw", age=5, score=0.0, returning="id") == 1
        assert db.insert("person", name="Raw2", age=6, score=0.0, returning="id") == 2
    assert other_connection.execute("SELECT id, name FROM person ORDER BY id").fetchall() == [
        (1, "Raw"),
        (2, "Raw2"),
    ]


@pytest.mark.sqlite_only
def test_db_insert_returns_the_rowid_by_default(Person, db) -> None:
    """Without ``returning``, ``db.insert`` returns the new row's id (SQLite's lastrowid, as Pony does)."""
    with db_session:
        assert db.insert("person", name="Raw", age=5, score=0.0) == 1
        assert db.insert("person", name="Raw2", age=6, score=0.0) == 2


def test_raw_sql_sees_pending_changes(Person, db) -> None:
    """Raw selects autoflush: a new object is visible to ``db.select``."""
    with db_session:
        Person(name="New")
        assert db.select("SELECT name FROM person") == ["New"]


# -- bound values and quoted identifiers --------------------------------------------------------

HOSTILE = "Robert'); DROP TABLE person;--"


def test_hostile_value_is_stored_and_found(Person, db, other_connection) -> None:
    """A value that looks like SQL is stored verbatim and found by every kind of query."""
    name = HOSTILE  # noqa: F841 - read by the SQL text
    with db_session:
        Person(name=HOSTILE, email="a' OR '1'='1")
    with db_session:
        p = Person.get(name=HOSTILE)
        assert p is not None and p.name == HOSTILE
        assert Person.select(Person.name.startswith("Robert')")).count() == 1
        assert Person.select(Person.name.contains("; DROP")).count() == 1
        assert Person.select(Person.name.in_([HOSTILE])).count() == 1
        assert Person.get(email="a' OR '1'='1") is p
        assert Person.get(email="x' OR '1'='1") is None
        assert names(Person.select_by_sql("SELECT * FROM person WHERE name = $name")) == [HOSTILE]
        assert db.select("SELECT email FROM person WHERE name = $name") == ["a' OR '1'='1"]
    assert other_connection.execute("SELECT name FROM person").fetchall() == [(HOSTILE,)]


def test_values_are_bound_not_inlined(Person, sql_log) -> None:
    """The SQL text of a query carries placeholders, never the value."""
    with db_session:
        sql_log.clear()
        Person.select(name=HOSTILE).fetch()
        Person(name=HOSTILE)
    assert sql_log.statements
    assert all(HOSTILE not in statement for statement in sql_log.statements)


def test_dollar_inside_sql_string_literal_is_not_a_parameter(people, db) -> None:
    """``'$x'`` inside a quoted SQL literal is left alone; ``$$`` is a literal dollar there too, as in Pony."""
    with db_session:
        assert db.select("SELECT '$nope'") == ["$nope"]
        assert db.select("SELECT 'a$$b'") == ["a$b"]


def test_identifiers_with_space_and_quote(db, other_connection) -> None:
    """Table and column names containing a space or a double quote work for every operation."""

    class Odd(db.Entity):
        _table_ = 'odd "table" name'
        id = PrimaryKey(int, auto=True, column="the id")
        label = Required(str, column='la"bel')
        note = Optional(str, column="my note")

    db.generate_mapping(create_tables=True)
    with db_session:
        Odd(label="a", note="n1")
        Odd(label="b", note="n2")
    with db_session:
        a = Odd.get(label="a")
        assert a.note == "n1"
        a.note = "changed"
        Odd.get(label="b").delete()
        assert names_of(Odd.select(Odd.note.startswith("ch")).order_by(desc(Odd.label))) == ["a"]
        assert Odd.select().count() == 1
        assert Odd[a.id] is a
    assert other_connection.execute(
        'SELECT "the id", "la""bel", "my note" FROM "odd ""table"" name"'
    ).fetchall() == [(1, "a", "changed")]


def names_of(objects) -> list[str]:  # type: ignore[no-untyped-def]
    """The labels of ``objects`` in order."""
    return [o.label for o in objects]


def test_hostile_identifier_is_quoted(db, other_connection) -> None:
    """A table name that is itself an injection attempt is just a (quoted) name."""

    class Victim(db.Entity):
        _table_ = "victim"
        name = Required(str)

    class Evil(db.Entity):
        _table_ = 'x"; DROP TABLE victim; --'
        name = Required(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        Victim(name="v")
        Evil(name="e")
    with db_session:
        assert Evil.select().count() == 1
        Evil.select().first().name = "f"
    assert other_connection.execute('SELECT name FROM "x""; DROP TABLE victim; --"').fetchall() == [("f",)]
    assert other_connection.execute("SELECT name FROM victim").fetchall() == [("v",)]


def test_select_by_sql_rejects_missing_param(people) -> None:
    """A ``$name`` missing from the params dict raises OrmError naming it."""
    P = people
    with db_session, pytest.raises(OrmError, match="missing_one"):
        P.select_by_sql("SELECT * FROM person WHERE age = $missing_one", {"other": 1})


def test_integrity_error_from_raw_sql_keeps_driver_cause(people, db) -> None:
    """A raw statement violating a constraint raises a nextorm error carrying the driver exception."""
    from nextorm import TransactionIntegrityError

    with pytest.raises(TransactionIntegrityError) as info:
        with db_session:
            db.execute("INSERT INTO person (name, email, age, score) VALUES ('Dup', 'ann@x', 1, 0)")
    assert isinstance(info.value.original_exc, DRIVER_INTEGRITY_ERRORS)


# -- get(attr=value): the SELECT text kept per shape ------------------------------------------------


def test_keyword_get_reuses_the_text_of_its_shape_with_new_values(people, sql_log) -> None:  # type: ignore[no-untyped-def]
    """A repeated ``get(attr=...)`` sends the same text as ``select(...).limit(2)``, each time with its
    own values; a None value is another shape (``IS NULL``)."""
    Person = people
    with db_session:
        expected = Person.select(name="Cid", age=41).limit(2).sql()
        sql_log.clear()
        assert Person.get(name="Cid", age=41).email == "cid@x"
        assert Person.get(name="Ann", age=30).email == "ann@x"
        assert Person.get(name="Ann", age=31) is None
        assert Person.get(name="Eve", age=35).email == "eve@x"
        assert Person.get(email="eve@x").name == "Eve"
        with pytest.raises(MultipleObjectsFoundError):
            Person.get(email=None)
        assert Person.get(email=None, age=41) is None
    selects = [s for s in sql_log.statements if s.startswith("SELECT")]
    assert selects[:4] == [expected[0]] * 4
    assert len(set(selects)) == 4
    assert "IS NULL" in selects[5] and "IS NULL" in selects[6]
    with db_session:
        assert Person.get(score=6).name == "Eve"  # an int for a float attribute, converted as the query does
        assert Person.get(score=6.0).name == "Eve"


def test_keyword_get_keeps_the_errors_of_the_query(people) -> None:  # type: ignore[no-untyped-def]
    """Once its shape is known, ``get()`` still refuses an unknown attribute and a value of the
    wrong type with the query's errors, and binds an expression or an object as the query does."""
    Person = people
    with db_session:
        assert Person.get(age=41).name == "Cid"
        with pytest.raises(AttributeTypeError, match="age"):
            Person.get(age="forty")
        with pytest.raises(UnknownAttributeError, match="height"):
            Person.get(height=41)
        assert Person.get(name="Cid", age=41).id == 3


def test_keyword_get_validates_values_its_columns_plain_checks_do_not_pass(people) -> None:  # type: ignore[no-untyped-def]
    """Once its shape is known, ``get()`` binds a plain value as given and still validates any other
    as the query does: text stripped, too long or holding a NUL refused, a bool or a too large int refused."""
    Person = people
    with db_session:
        assert Person.get(name="Cid").age == 41
        assert Person.get(name=" Cid\t").age == 41
        assert Person.get(name="Zoë") is None
        with pytest.raises(ValidationError, match="max_len"):
            Person.get(name="x" * 101)
        with pytest.raises(ValidationError, match="NUL"):
            Person.get(name="Ci\x00d")
        assert Person.get(age=41).name == "Cid"
        with pytest.raises(ValidationError, match="age"):
            Person.get(age=2**70)
        with pytest.raises(AttributeTypeError, match="age"):
            Person.get(age=True)


def test_keyword_get_of_a_subclass_keeps_its_discriminator(db) -> None:  # type: ignore[no-untyped-def]
    """The text kept for a subclass filters on its discriminator, whatever value comes next."""

    class Animal(db.Entity):
        id = PrimaryKey(int, auto=True)
        name = Required(str)

    class Dog(Animal):
        bark = Optional(str)

    db.generate_mapping(create_tables=True)
    with db_session:
        Animal(name="Rex")
        Dog(name="Rex", bark="woof")
        Dog(name="Fido", bark="wuff")
    with db_session:
        assert Dog.get(name="Rex").bark == "woof"
        assert Dog.get(name="Fido").bark == "wuff"
        assert type(Animal.get(name="Fido")) is Dog
        with pytest.raises(MultipleObjectsFoundError):
            Animal.get(name="Rex")
