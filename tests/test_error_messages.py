"""Errors of bad queries and the query statistics of a database (docs/api.md "Errors", "Query statistics").

Where an error keeps the wording Pony's applications check, ``str(error)`` is that message and a
note (``error.__notes__``) tells the query and its line; each test checks both, and that the
message names the entity, attribute, value or expression at fault.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from nextorm import (
    AttributeTypeError,
    Database,
    ExprEvalError,
    IncomparableTypesError,
    QueryAttributeError,
    QueryError,
    QueryNameError,
    QueryStat,
    Required,
    Set,
    TranslationError,
    UnknownAttributeError,
    avg,
    concat,
    db_session,
    delete,
    exists,
    max,
    min,
    raw_sql,
    select,
    sum,
)


def _notes(error: BaseException) -> str:
    return "\n".join(getattr(error, "__notes__", []))


@pytest.fixture
def school(db: Database) -> Any:
    """Groups of students taking courses, with a few rows."""

    class Group(db.Entity):
        number = Required(int)
        students = Set("Student")

    class Course(db.Entity):
        name = Required(str)
        credits = Required(int)
        students = Set("Student")

    class Student(db.Entity):
        name = Required(str)
        gpa = Required(float)
        group = Required(Group)
        courses = Set(Course)

    db.generate_mapping(create_tables=True)
    with db_session:
        g = Group(number=101)
        math = Course(name="Math", credits=5)
        Student(name="Ann", gpa=3.5, group=g, courses=[math])
        Student(name="Bob", gpa=4.0, group=g)
    return db


# -- values a query evaluates as Python ---------------------------------------------------------------


def test_a_failing_scope_value_names_the_expression_that_raised(school: Any) -> None:
    """ExprEvalError's message quotes the part of the query evaluated in Python, not the whole query."""
    Student, Group = school.Student, school.Group
    with db_session:
        with pytest.raises(ExprEvalError) as info:
            select(s for s in Student if s.group == Group[1, 2])
        error = info.value
        assert str(error).startswith("`Group[1, 2]` raises TypeError: ")
        assert "Group" in str(error) and "primary key" in str(error)
        assert isinstance(error.__cause__, TypeError)
        assert error.expression == "Group[1, 2]"
        assert error.query == "(s for s in Student if s.group == Group[1, 2])"
        assert error.line is not None and f"at line {error.line}" in _notes(error)

        g = Group.select().first()
        with pytest.raises(ExprEvalError, match=r"^`g\.number\.foo` raises AttributeError: .*'foo'"):
            select(s for s in Student if s.name == g.number.foo)
        # a condition that reads no object of the query is evaluated whole
        with pytest.raises(ExprEvalError, match=r"^`len\(1, 2\) == 3` raises TypeError"):
            select(s for s in Student if len(1, 2) == 3)  # type: ignore[call-arg]


def test_a_failing_value_in_query_text_names_the_expression(school: Any) -> None:
    """Query text reports the failing part the same way."""
    Student = school.Student  # noqa: F841 - the query text reads it
    with db_session, pytest.raises(ExprEvalError, match=r"^`max\(\)` raises TypeError") as info:
        select("s for s in Student if s.gpa < max()")
    assert "s.gpa < max()" in _notes(info.value)


# -- aggregates ----------------------------------------------------------------------------------------


def test_an_aggregate_of_objects_names_the_function_and_entity(school: Any) -> None:
    """sum()/avg()/min()/max() of objects is a TypeError naming the function, entity and expression."""
    Student, Group = school.Student, school.Group
    with db_session:
        with pytest.raises(TranslationError) as info:
            select(g for g in Group if sum(s for s in Student if s.group == g) > 1)
        assert isinstance(info.value, TypeError)
        assert str(info.value) == (
            "Function sum() expects query or items of numeric type, got 'Student' in "
            "sum(s for s in Student if s.group == g)"
        )
        assert "line" in _notes(info.value)
        with pytest.raises(TranslationError, match=r"^Function avg\(\) expects .* got 'Student' in avg\(s for s in"):
            select(g for g in Group if avg(s for s in Student if s.group == g) > 1)
        with pytest.raises(TranslationError) as info:
            select(g for g in Group if min(s for s in Student if s.group == g) > 1)
        assert str(info.value) == (
            "Function min() cannot be applied to type 'Student' in min(s for s in Student if s.group == g)"
        )
        with pytest.raises(TranslationError, match=r"^Function max\(\) cannot be applied to type 'Student' in max\("):
            select(g for g in Group if max(s for s in Student if s.group == g) > 1)


def test_sum_of_strings_in_a_query_is_refused(school: Any) -> None:
    """sum() and avg() over a str attribute name the type and the expression; min() of strings is fine."""
    Student, Course = school.Student, school.Course
    with db_session:
        with pytest.raises(TranslationError, match=r"^Function sum\(\) .* got 'str' in sum\(s\.courses\.name\)"):
            select(s for s in Student if sum(s.courses.name) > 10)
        with pytest.raises(TranslationError, match=r"got 'str' in avg\(c\.name for c in s\.courses\)"):
            select(s for s in Student if avg(c.name for c in s.courses) > 10)
        assert [s.name for s in select(s for s in Student if min(c.name for c in s.courses) == "Math")] == ["Ann"]
        assert select(c for c in Course if sum(c.students.gpa) > 3).count() == 1


def test_an_aggregate_of_a_query_selecting_objects_or_tuples(school: Any) -> None:
    """sum()/max() of a query need one attribute: the message says which, the note shows how."""
    Student = school.Student
    with db_session:
        with pytest.raises(QueryError, match=r"^Attribute should be specified for 'max' aggregate function") as info:
            max(s for s in Student)
        assert "select(p.attr for p in Student)" in _notes(info.value)
        with pytest.raises(QueryError, match=r"^Single attribute should be specified for 'sum' aggregate function"):
            sum((s.name, s.gpa) for s in Student)
        with pytest.raises(QueryError, match=r"^'sum' is valid for numeric attributes only") as info:
            sum(s.name for s in Student)
        assert "Student.name" in _notes(info.value)
        assert sum(s.gpa for s in Student) == 7.5


# -- other `for` clauses and attributes ------------------------------------------------------------------


def test_a_for_over_a_plain_value_names_the_clause(school: Any) -> None:
    """A `for` over something that is neither an entity nor a collection quotes that `for` clause."""
    Student, Group = school.Student, school.Group
    with db_session:
        values = [1, 2, 3]
        with pytest.raises(TranslationError) as info:
            select(s for s in Student for i in values)
        assert str(info.value) == "Inside declarative query, iterator must be entity or query. Got: for i in values"
        assert "[1, 2, 3]" in _notes(info.value)
        g = Group.select().first()
        with pytest.raises(TranslationError, match=r"Got: for s2 in g\.students"):
            select(s for s in Student for s2 in g.students)


def test_an_unknown_attribute_names_the_entity_and_the_path_read(school: Any) -> None:
    """An unknown attribute on a path names the entity, the attribute and the path up to it."""
    Student = school.Student
    with db_session:
        with pytest.raises(UnknownAttributeError) as info:
            select(s.name for s in Student if s.group.foo.bar == 10)
        assert isinstance(info.value, AttributeError)
        assert str(info.value) == "Entity Group does not have attribute foo: s.group.foo"
        assert "Entity Group has no attribute 'foo'" in _notes(info.value)
        with pytest.raises(UnknownAttributeError, match=r"^Entity Student does not have attribute nick: s\.nick"):
            select(s for s in Student if s.nick == "x")


def test_an_unknown_attribute_of_a_collections_members_names_the_path(school: Any) -> None:
    """``s.courses.foo`` reads an attribute of the collection: QueryAttributeError (an
    AttributeError) whose message is the path as written; a note names the entity."""
    Student = school.Student
    with db_session:
        with pytest.raises(QueryAttributeError) as info:
            select(s for s in Student if "x" in s.courses.foo.bar)
        assert isinstance(info.value, AttributeError)
        assert str(info.value) == "s.courses.foo"
        assert "Entity Course has no attribute 'foo'" in _notes(info.value)
        with pytest.raises(QueryAttributeError) as info:  # through a nested generator's object
            select(s for s in Student if exists(c for c in s.group.students if "x" in c.courses.foo))
        assert str(info.value) == "c.courses.foo"


# -- query statistics -------------------------------------------------------------------------------------


def test_local_stats_count_each_statement_with_its_time(school: Any) -> None:
    """db.local_stats counts the statements this thread sent, per SQL text and in total (key None)."""
    db, Student = school, school.Student
    db.merge_local_stats()
    assert db.local_stats[None].db_count == 0
    with db_session:
        list(select(s for s in Student if s.gpa > 1))
        list(select(s for s in Student if s.gpa > 2))
        sql = db.last_sql
    stats = db.local_stats
    total = stats[None]
    assert isinstance(total, QueryStat) and total.sql is None
    assert stats[sql].db_count == 2 and stats[sql].sql == sql  # one text, two runs with other values
    assert total.db_count == sum(stat.db_count for key, stat in stats.items() if key is not None) >= 2
    stat = stats[sql]
    assert 0 <= stat.min_time <= stat.avg_time <= stat.max_time <= stat.sum_time
    assert stat.avg_time == pytest.approx(stat.sum_time / 2)
    assert not any(key is not None and key.strip().upper() in ("BEGIN", "COMMIT", "ROLLBACK") for key in stats)


def test_merge_local_stats_moves_them_to_global_stats(school: Any) -> None:
    """merge_local_stats() adds this thread's statistics to global_stats and starts them anew."""
    import threading

    db, Student = school, school.Student
    db.merge_local_stats()
    before = db.global_stats.get(None)
    before_count = before.db_count if before is not None else 0
    with db_session:
        Student.select().count()
    ran = db.local_stats[None].db_count
    assert ran >= 1
    db.merge_local_stats()
    assert db.local_stats[None].db_count == 0
    assert db.global_stats[None].db_count == before_count + ran

    def other_thread() -> None:
        with db_session:
            Student.select().count()
        db.merge_local_stats()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    # another thread's statements are its own until it merges them
    assert db.local_stats[None].db_count == 0
    assert db.global_stats[None].db_count > before_count + ran
    copy = db.global_stats
    copy[None].db_count = -1  # a copy: changing it changes nothing
    assert db.global_stats[None].db_count > 0


def test_an_unbound_database_has_empty_stats() -> None:
    """A database without a provider has no statements to count."""
    db = Database()
    assert db.local_stats[None].db_count == 0 and db.global_stats == {}
    db.merge_local_stats()


# -- incomparable types ----------------------------------------------------------------------------------


def test_comparing_an_attribute_with_a_value_of_another_type(school: Any) -> None:
    """``s.name > 1`` is IncomparableTypesError naming both types and the comparison as written."""
    Student = school.Student
    a = 1
    with db_session:
        with pytest.raises(IncomparableTypesError) as info:
            select(s for s in Student if s.name > a & 2)
        error = info.value
        assert isinstance(error, AttributeTypeError) and isinstance(error, TypeError)
        assert str(error) == "Incomparable types 'str' and 'int' in expression: s.name > a & 2"
        assert "Value type for attribute Student.name must be str. Got int: 0" in _notes(error)
        with pytest.raises(IncomparableTypesError, match=r"^Incomparable types 'str' and 'float' in expression: s\.name > 1 / a - 3"):
            select(s for s in Student if s.name > 1 / a - 3)
        with pytest.raises(IncomparableTypesError, match=r"^Incomparable types 'str' and 'float' in expression: s\.name < s\.gpa"):
            select(s for s in Student if s.name < s.gpa)
        with pytest.raises(IncomparableTypesError, match=r"^Incomparable types 'Student' and 'Course' in expression: s in s\.courses"):
            select(s for s in Student if s in s.courses)
        # numbers compare with numbers: an int attribute with a float value too
        assert {s.name for s in select(s for s in Student if s.group.number > 100.5)} == {"Ann", "Bob"}
        assert not select(s for s in Student if s.group.number > 101.5).exists()
        assert [s.name for s in select(s for s in Student if s.gpa > 3.9)] == ["Bob"]


def test_ordering_an_attribute_against_none_is_refused(school: Any) -> None:
    """``s.gpa > None`` is no condition (Python refuses ``1.0 > None``): IncomparableTypesError on
    every form and every run, where it used to read ``IS NOT NULL`` and return every row; == and !=
    with None still read IS NULL and IS NOT NULL."""
    Student = school.Student
    with db_session:
        for limit in (3.9, None, 3.9, None):  # the repeated query binds its value on every run
            if limit is None:
                with pytest.raises(IncomparableTypesError) as info:
                    select(s for s in Student if s.gpa > limit)
                assert str(info.value) == "Incomparable types 'float' and 'NoneType' in expression: s.gpa > limit"
                with pytest.raises(IncomparableTypesError, match=r"'float' and 'NoneType' in expression: s\.gpa <= limit"):
                    Student.select(lambda s: s.gpa <= limit)
                with pytest.raises(IncomparableTypesError, match=r"'float' and 'NoneType' in expression: s\.gpa \+ 1 >= limit"):
                    select(s for s in Student if s.gpa + 1 >= limit)
            else:
                assert [s.name for s in select(s for s in Student if s.gpa > limit)] == ["Bob"]
                assert [s.name for s in Student.select(lambda s: s.gpa <= limit)] == ["Ann"]
        with pytest.raises(AttributeTypeError, match=r"^Student\.gpa < None: None is compared with == and != only"):
            Student.select(Student.gpa < None)
        assert {s.name for s in select(s for s in Student if s.gpa != None)} == {"Ann", "Bob"}  # noqa: E711
        assert not select(s for s in Student if s.gpa == None).exists()  # noqa: E711


def test_a_list_compared_with_an_attribute_is_named_by_its_array_type(school: Any) -> None:
    """A list of str, int or float compared with an attribute of another type is named as the
    array type it would be (``StrArray``); a mixed list is a ``list``."""
    Student = school.Student
    names, mixed = ["A"], [1, (2,)]
    with db_session:
        with pytest.raises(IncomparableTypesError) as info:
            select(s for s in Student if s.name == names)
        assert str(info.value) == "Incomparable types 'str' and 'StrArray' in expression: s.name == names"
        assert "Got list: ['A']" in _notes(info.value)
        with pytest.raises(IncomparableTypesError, match=r"^Incomparable types 'float' and 'IntArray' in expression"):
            select(s for s in Student if s.gpa == [1, 2])
        with pytest.raises(IncomparableTypesError, match=r"^Incomparable types 'str' and 'list' in expression"):
            select(s for s in Student if s.name == mixed)


def test_a_value_of_a_type_no_query_binds_names_the_expression_and_type(school: Any) -> None:
    """A compared value of a type that is no column type (a complex number) is a QueryError (a
    TypeError) naming the expression that gives it and its type; a note the attribute's refusal."""
    Student = school.Student
    x = 1j
    with db_session:
        with pytest.raises(QueryError) as info:
            select(s for s in Student if s.gpa == x)
        assert isinstance(info.value, TypeError)
        assert str(info.value) == "Expression `x` has unsupported type 'complex'"
        assert "Value type for attribute Student.gpa must be float. Got complex: 1j" in _notes(info.value)
        assert "`s.gpa == x` at line" in _notes(info.value)


def test_raw_sql_of_a_value_of_the_query_is_refused(school: Any) -> None:
    """raw_sql() takes SQL text: a value of the query's objects is a TranslationError naming the
    call, with the query's line in a note."""
    Student = school.Student
    with db_session:
        with pytest.raises(TranslationError) as info:
            select(s for s in Student if raw_sql(s.name))
        assert str(info.value) == (
            "Expression `raw_sql(s.name)` cannot be translated into SQL because raw SQL fragment will be "
            "different for each row"
        )
        assert "test_error_messages.py" in _notes(info.value)


def test_a_raw_sql_name_not_defined_names_the_raw_sql_call(school: Any) -> None:
    """A ``$name`` of raw_sql() not defined where the query runs is a QueryNameError (an
    ExprEvalError and a NameError) naming the raw_sql() call as written."""
    Student = school.Student
    with db_session:
        with pytest.raises(QueryNameError) as info:
            select(s for s in Student if raw_sql("s.gpa > $undefined_limit"))[:]
        error = info.value
        assert isinstance(error, ExprEvalError) and isinstance(error, NameError)
        assert str(error) == "`raw_sql('s.gpa > $undefined_limit')` raises NameError: name 'undefined_limit' is not defined"
        assert "The name 'undefined_limit' is not defined where the query runs" in _notes(error)


def test_delete_of_a_query_of_values_names_what_it_selects(school: Any) -> None:
    """delete() of a generator query selecting values or tuples names what it selects."""
    Student, Group = school.Student, school.Group
    with db_session:
        with pytest.raises(QueryError) as info:
            delete((s, g) for g in Group for s in g.students if s.gpa > 3)
        assert str(info.value) == "Delete query should be applied to a single entity. Got: (s, g)"
        assert "this query of Group selects values" in _notes(info.value)
        with pytest.raises(QueryError, match=r"^Delete query should be applied to a single entity\. Got: s\.name"):
            delete(s.name for s in Student)
        assert Student.select().count() == 2


def test_a_string_index_or_slice_of_a_wrong_type_names_the_operation_as_written(school: Any) -> None:
    """A step, a bound or an index of a string that is not an int is a QueryError (a TypeError)
    naming the operation as the query writes it; a note names the query."""
    Student = school.Student
    key = "k"
    with db_session:
        with pytest.raises(QueryError) as info:
            select(s for s in Student if s.name[1:3:5] == "A")
        assert isinstance(info.value, TypeError)
        assert str(info.value) == "Step is not supported in s.name[1:3:5]"
        assert "in the query `(s for s in Student if s.name[1:3:5] == 'A')` at line" in _notes(info.value)
        with pytest.raises(QueryError) as info:
            select(s for s in Student if s.name["a":1] == "A")
        assert str(info.value) == "Invalid type of start index (expected 'int', got 'str') in string slice s.name['a':1]"
        with pytest.raises(QueryError) as info:
            select(s for s in Student if s.name[1:s.gpa] == "A")
        assert str(info.value) == "Invalid type of stop index (expected 'int', got 'float') in string slice s.name[1:s.gpa]"
        with pytest.raises(QueryError) as info:
            select(s.name for s in Student if s.name[key] == "h")
        assert str(info.value) == "String indices must be integers. Got 'str' in expression s.name[key]"
        with pytest.raises(QueryError) as info:  # in a nested generator, a lambda and query text alike
            select(s for s in Student if exists(c for c in s.courses if c.name["x"] == "A"))
        assert str(info.value) == "String indices must be integers. Got 'str' in expression c.name['x']"
        with pytest.raises(QueryError) as info:
            Student.select(lambda s: s.name.upper()[1:"x"] == "A")
        assert str(info.value) == "Invalid type of stop index (expected 'int', got 'str') in string slice s.name.upper()[1:'x']"
        with pytest.raises(QueryError) as info:
            select("s for s in Student if s.name[::2] == 'A'")
        assert str(info.value) == "Step is not supported in s.name[::2]"
        # the attribute-expression form names the attribute by its entity
        with pytest.raises(QueryError) as info:
            Student.name[1:3:5]
        assert str(info.value) == "Step is not supported in Student.name[1:3:5]"
        with pytest.raises(QueryError) as info:
            Student.name["a"]
        assert str(info.value) == "String indices must be integers. Got 'str' in expression Student.name['a']"
        assert [s.name for s in select(s for s in Student if s.name[1:3] == "nn")] == ["Ann"]


def test_a_string_test_of_a_value_that_is_not_a_str_names_the_test_as_written(school: Any) -> None:
    """``startswith``/``endswith`` of a non-str are AttributeTypeError naming the call as written;
    ``1 in s.name`` is IncomparableTypesError naming both types."""
    Student = school.Student
    with db_session:
        with pytest.raises(AttributeTypeError) as info:
            select(s.name for s in Student if s.name.startswith(1))
        assert isinstance(info.value, TypeError)
        assert str(info.value) == "Expected 'str' argument but got 'int' in expression s.name.startswith(1)"
        assert "in the query" in _notes(info.value)
        with pytest.raises(AttributeTypeError) as info:
            Student.select(lambda s: s.name.upper().endswith(2))
        assert str(info.value) == "Expected 'str' argument but got 'int' in expression s.name.upper().endswith(2)"
        with pytest.raises(IncomparableTypesError) as info:
            select(s.name for s in Student if 1 in s.name)
        assert str(info.value) == "Incomparable types 'int' and 'str' in expression: 1 in s.name"
        with pytest.raises(AttributeTypeError) as info:
            Student.name.endswith(1)
        assert str(info.value) == "Expected 'str' argument but got 'int' in expression Student.name.endswith(1)"
        with pytest.raises(IncomparableTypesError) as info:
            Student.name.contains(1)
        assert str(info.value) == "Incomparable types 'int' and 'str' in expression: Student.name.contains(1)"


def test_a_string_method_given_too_many_arguments_says_how_many_it_takes(school: Any) -> None:
    """``s.name.strip(1, 2, 3)`` is a TranslationError (a TypeError) in Python's wording; a note
    names the call and its line."""
    Student = school.Student
    with db_session:
        with pytest.raises(TranslationError) as info:
            select(s for s in Student if s.name.strip(1, 2, 3))
        assert isinstance(info.value, TypeError)
        assert str(info.value) == "strip() takes at most 1 argument (3 given)"
        assert "`s.name.strip(1, 2, 3)` at line" in _notes(info.value)
        with pytest.raises(TranslationError, match=r"^lower\(\) takes no arguments \(1 given\)"):
            select(s for s in Student if s.name.lower(1) == "a")
        assert [s.name for s in select(s for s in Student if s.name.strip("A") == "nn")] == ["Ann"]


def test_date_datetime_or_bytes_of_arguments_that_do_not_fit_name_the_argument(db: Database) -> None:
    """date(), datetime() and bytes() in a query given arguments of the wrong type raise a
    QueryError (a TypeError) naming the argument, not an ExprEvalError; other failures stay one."""
    from datetime import datetime

    class Visit(db.Entity):
        day = Required(date)
        at = Required(datetime)
        data = Required(bytes)

    db.generate_mapping(create_tables=True)
    month = "three"
    with db_session:
        Visit(day=date(2020, 1, 2), at=datetime(2020, 1, 2, 3), data=b"abc")
        with pytest.raises(QueryError) as info:
            select(v for v in Visit if v.day < date("2011", 1, 1))
        assert isinstance(info.value, TypeError) and not isinstance(info.value, ExprEvalError)
        assert str(info.value) == "'year' argument of date(year, month, day) function must be of 'int' type. Got: 'str'"
        assert "`date('2011', 1, 1)` at line" in _notes(info.value)
        with pytest.raises(QueryError) as info:
            select(v for v in Visit if v.day >= date(year=1983, month=month, day=3))
        assert str(info.value) == "'month' argument of date(year, month, day) function must be of 'int' type. Got: 'str'"
        with pytest.raises(QueryError) as info:
            select(v for v in Visit if v.at >= datetime(1983, 1, 3, "x"))
        assert str(info.value) == "'hour' argument of datetime(...) function must be of 'int' type. Got: 'str'"
        with pytest.raises(QueryError) as info:
            select(v for v in Visit if v.data == bytes("abc"))
        assert str(info.value) == "string argument without an encoding"
        with pytest.raises(ExprEvalError, match=r"^`date\(1983, 13, 3\)` raises ValueError"):
            select(v for v in Visit if v.day < date(1983, 13, 3))
        assert select(v for v in Visit if v.day > date(2020, 1, 1) and v.data == bytes("abc", "ascii")).count() == 1
        assert select(v for v in Visit if v.at < datetime(year=2021, month=1, day=1)).count() == 1


def test_a_collection_given_to_a_function_of_values_names_the_argument(school: Any) -> None:
    """``concat(g.number, g.students)`` is a TranslationError naming the argument that is a
    collection; a note says what the function takes."""
    Group = school.Group
    with db_session:
        with pytest.raises(TranslationError) as info:
            select(concat(g.number, g.students) for g in Group)
        assert str(info.value) == "Invalid argument of concat() function: g.students"
        assert "concat() takes values, not a collection or a nested query" in _notes(info.value)
        assert select(concat(g.number, "!") for g in Group)[:] == ["101!"]


def test_objects_an_object_is_among_may_not_include_none(school: Any) -> None:
    """``s in x`` where ``x`` holds None is a TranslationError naming ``x``."""
    Student = school.Student
    with db_session:
        ann = Student.get(name="Ann")
        x = ann, None
        with pytest.raises(TranslationError) as info:
            select(s for s in Student if s not in x)[:]
        assert str(info.value) == "Expression `x` should not contain None values"
        assert "`s not in x` at line" in _notes(info.value)
        assert [s.name for s in select(s for s in Student if s not in (ann,))] == ["Bob"]


def test_arithmetic_on_operands_of_wrong_types_names_both_types_and_the_expression(school: Any) -> None:
    """``s.name + 2`` is a QueryError (a TypeError) naming both types, the operator and the
    expression as written; a note gives the query's line (and what date arithmetic allows)."""
    Student = school.Student
    word, day = "abc", date(2020, 1, 1)
    with db_session:
        with pytest.raises(QueryError) as info:
            select(s for s in Student if s.group.number + s.name < 0)
        error = info.value
        assert isinstance(error, TypeError)
        assert str(error) == "Unsupported operand types 'int' and 'str' for operation '+' in expression: s.group.number + s.name"
        assert "`s.group.number + s.name` at line" in _notes(error) and "test_error_messages.py" in _notes(error)
        with pytest.raises(QueryError) as info:
            select(s for s in Student if s.gpa ** word > 10)
        assert str(info.value) == "Unsupported operand types 'float' and 'str' for operation '**' in expression: s.gpa ** word"
        with pytest.raises(QueryError) as info:
            select(s for s in Student if s.name + 2 > 10)
        assert str(info.value) == "Unsupported operand types 'str' and 'int' for operation '+' in expression: s.name + 2"
        with pytest.raises(QueryError) as info:  # the innermost wrong operation is named
            select(s for s in Student if (s.gpa * 2 - day) * 3 > 1)
        assert str(info.value) == "Unsupported operand types 'float' and 'date' for operation '-' in expression: s.gpa * 2 - day"
        with pytest.raises(QueryError) as info:
            select("s for s in Student if s.name - word == 1")
        assert str(info.value) == "Unsupported operand types 'str' and 'str' for operation '-' in expression: s.name - word"
        assert "s.name - word" in _notes(info.value)
        # the attribute-expression form names the attribute by its entity
        with pytest.raises(QueryError) as info:
            Student.select(Student.name + 2 > 10)
        assert str(info.value) == "Unsupported operand types 'str' and 'int' for operation '+' in expression: Student.name + 2"
        # operands of the right types still compute
        assert {s.name for s in select(s for s in Student if s.gpa * 2 - 1 > 6.5)} == {"Bob"}
        assert sorted(select(s.name + "!" for s in Student)) == ["Ann!", "Bob!"]


def test_strip_of_chars_that_are_not_a_str_names_the_call_as_written(school: Any) -> None:
    """``s.name.strip(1)`` is a QueryError (a TypeError) naming the argument's type and the call."""
    Student = school.Student
    with db_session:
        with pytest.raises(QueryError) as info:
            select(s.name for s in Student if s.name.strip(1))
        assert isinstance(info.value, TypeError)
        assert str(info.value) == "'chars' argument must be of 'str' type in s.name.strip(1), got: 'int'"
        with pytest.raises(QueryError) as info:
            Student.name.rstrip(2.5)
        assert str(info.value) == "'chars' argument must be of 'str' type in Student.name.rstrip(2.5), got: 'float'"
        assert [s.name for s in select(s for s in Student if s.name.lstrip("A") == "nn")] == ["Ann"]


def test_arithmetic_of_a_decimal_and_a_float_is_refused_as_in_python(db: Database) -> None:
    """A Decimal and a float do not mix in query arithmetic, as in Python: the QueryError names
    both types and the expression; a note says to convert one."""
    from decimal import Decimal

    class Item(db.Entity):
        price = Required(Decimal, 10, 2)
        weight = Required(float)

    db.generate_mapping(create_tables=True)
    with db_session:
        Item(price=Decimal("2.50"), weight=1.5)
        with pytest.raises(QueryError) as info:
            select(i for i in Item if i.price + 1.1 > 10)
        assert str(info.value) == "Unsupported operand types 'Decimal' and 'float' for operation '+' in expression: i.price + 1.1"
        assert "convert one with Decimal() or float()" in _notes(info.value)
        with pytest.raises(QueryError, match=r"^Unsupported operand types 'float' and 'Decimal' for operation '\*'"):
            select(i for i in Item if i.weight * i.price > 10)
        assert select(i for i in Item if i.price * 2 > 4 and i.weight * 2 > 2.5).count() == 1


def test_date_arithmetic_with_a_value_of_another_type_says_what_is_allowed(db: Database) -> None:
    """``e.d - "x"`` names both types and the expression; a note tells what date arithmetic takes."""

    class Event(db.Entity):
        d = Required(date)

    db.generate_mapping(create_tables=True)
    s = "hello"
    with db_session:
        with pytest.raises(QueryError) as info:
            select(e for e in Event if e.d - s > 1)
        assert str(info.value) == "Unsupported operand types 'date' and 'str' for operation '-' in expression: e.d - s"
        assert "moves a date or datetime by a timedelta" in _notes(info.value)
        with pytest.raises(QueryError) as info:
            select(e for e in Event if 3 + e.d > s)
        assert str(info.value) == "Unsupported operand types 'int' and 'date' for operation '+' in expression: 3 + e.d"
