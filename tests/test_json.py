"""Json attributes: values changed in place are tracked and saved (docs/entity-model.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from nextorm import Database, Json, Optional, Required, ValidationError, db_session, flush, rollback
from nextorm.types import TrackedDict, TrackedList, TrackedValue

INFO = {"os": {"type": "iOS", "version": "8"}, "colors": ["Gold", "Silver"], "size": 9.7}


@pytest.fixture
def Product(db: Database) -> Any:
    """A Product with a Json ``info`` holding nested dicts and lists, and a Json ``tags`` list."""

    class Product(db.Entity):
        name = Required(str)
        info = Optional(Json)
        tags = Optional(Json)

    db.generate_mapping(create_tables=True)
    with db_session:
        Product(name="iPad", info=INFO, tags=["Tablets", "Apple"])
    return Product


def test_values_read_are_tracked_dicts_and_lists(Product: Any) -> None:
    """A Json dict reads as a TrackedDict (a dict), nested lists as TrackedLists (lists)."""
    with db_session:
        info = Product[1].info
        assert type(info) is TrackedDict and type(info["colors"]) is TrackedList
        assert info == INFO and isinstance(info, dict)
        assert Product[1].info is info


CHANGES: dict[str, tuple[Callable[[Any], None], Callable[[Any], Any]]] = {
    "nested set": (lambda p: p.info["os"].__setitem__("version", "9"), lambda p: p.info["os"]["version"]),
    "append": (lambda p: p.info["colors"].append("Gray"), lambda p: p.info["colors"]),
    "slice": (lambda p: p.info["colors"].__setitem__(slice(0, 1), ["A", "B"]), lambda p: p.info["colors"]),
    "del item": (lambda p: p.info["colors"].__delitem__(0), lambda p: p.info["colors"]),
    "del key": (lambda p: p.info.__delitem__("os"), lambda p: sorted(p.info)),
    "pop": (lambda p: p.info.pop("size"), lambda p: sorted(p.info)),
    "update": (lambda p: p.info.update(size=10.5, new={"a": [1]}), lambda p: (p.info["size"], p.info["new"])),
    "setdefault": (lambda p: p.info.setdefault("extra", []).append(1), lambda p: p.info["extra"]),
    "list sort": (lambda p: p.tags.sort(), lambda p: p.tags),
    "clear": (lambda p: p.tags.clear(), lambda p: p.tags),
    "extend": (lambda p: p.tags.extend(["x", {"y": 1}]), lambda p: p.tags),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_made_in_place_is_saved(Product: Any, change: str) -> None:
    """Every in-place change of a nested dict or list marks the object changed and is flushed."""
    act, read = CHANGES[change]
    with db_session:
        p = Product[1]
        act(p)
        expected = read(p)
        assert p._status_ == 3  # MODIFIED: queued for UPDATE at once
    with db_session:
        assert read(Product[1]) == expected


def test_a_value_put_in_later_is_tracked_too(Product: Any) -> None:
    """A dict added to a Json value is tracked: changing it afterwards is saved as well."""
    with db_session:
        p = Product[1]
        p.info["models"] = [{"name": "Wi-Fi"}]
        flush()
        p.info["models"][0]["name"] = "Cellular"
    with db_session:
        assert Product[1].info["models"] == [{"name": "Cellular"}]


def test_rollback_discards_a_change_made_in_place(Product: Any) -> None:
    """Changes made in place and rolled back never reach the database."""
    with db_session:
        p = Product[1]
        p.info["os"]["version"] = "10"
        p.info["colors"].append("Red")
        rollback()
    with db_session:
        assert Product[1].info == INFO


def test_a_value_that_is_not_json_is_refused_before_any_change(Product: Any) -> None:
    """Putting a set into a Json dict raises ValidationError naming the attribute; nothing changes."""
    with db_session:
        p = Product[1]
        with pytest.raises(ValidationError, match=r"Product\.info"):
            p.info["bad"] = {1, 2}
        assert "bad" not in p.info
        assert p._status_ == 2  # LOADED: nothing queued


def test_assigning_the_same_value_is_no_change(Product: Any) -> None:
    """``p.info = p.info`` and an equal plain dict leave the object unchanged (Json equality)."""
    with db_session:
        p = Product[1]
        p.info = p.info
        p.info = dict(INFO)
        assert p._status_ == 2


def test_a_tracked_value_given_to_another_object_is_tracked_for_it(Product: Any) -> None:
    """A value taken from one object and assigned to another reports its changes to the new owner."""
    with db_session:
        p = Product[1]
        q = Product(name="copy", info=p.info)
        flush()
        q.info["size"] = 1.0
        assert p.info["size"] == 9.7
    with db_session:
        assert (Product[1].info["size"], Product[2].info["size"]) == (9.7, 1.0)


def test_changes_after_the_session_are_refused(Product: Any) -> None:
    """An in-place change after the session ended raises the session-is-over error."""
    with db_session:
        info = Product[1].info
    with pytest.raises(Exception, match="session is over"):
        info["os"] = None


def test_tracked_value_calls_its_object_before_each_change() -> None:
    """``TrackedValue.make`` works for any object with ``_attr_changed_`` (Pony's protocol)."""
    log: list[Any] = []

    class Owner:
        def _attr_changed_(self, attr: Any) -> None:
            log.append(attr)

    attr = object()
    value = TrackedValue.make(Owner(), attr, {"items": ["one", "two", "three"]})
    value["items"][1:2] = ["a", "b"]
    value["items"] = [1]
    assert log == [attr, attr]
    assert value == {"items": [1]}
    assert Json([1]).wrapped == [1]


# -- Json in queries ---------------------------------------------------------------------------


@pytest.fixture
def catalog(Product: Any) -> Any:
    """A second Product whose Json differs in every part the queries test."""
    with db_session:
        Product(name="Nexus", info={"os": {"type": "Android", "version": "9"}, "colors": [], "size": 7})
    return Product


def names(query: Any) -> list[str]:
    """The names of the products a query returns, sorted."""
    return sorted(p.name for p in query)


def test_json_paths_compare_with_values(catalog: Any) -> None:
    """``p.info["os"]["version"] == "9"``, numbers, lists, dicts and ``Json(...)`` values."""
    from nextorm import select

    P = catalog
    key, index = "colors", 0
    with db_session:
        assert names(select(p for p in P if p.info["os"]["version"] == "9")) == ["Nexus"]
        assert names(select(p for p in P if p.info["size"] > 8)) == ["iPad"]
        assert names(select(p for p in P if p.info["size"] <= 9.7)) == ["Nexus", "iPad"]
        assert names(select(p for p in P if p.info[key][index] == "Gold")) == ["iPad"]
        assert names(select(p for p in P if p.info["colors"][-1] == "Silver")) == ["iPad"]
        assert names(select(p for p in P if p.info["colors"] == ["Gold", "Silver"])) == ["iPad"]
        assert names(select(p for p in P if p.info["colors"] == Json([]))) == ["Nexus"]
        assert names(select(p for p in P if p.info["os"] == {"type": "iOS", "version": "8"})) == ["iPad"]
        assert names(P.select(P.info["os"]["type"] != "iOS")) == ["Nexus"]


def test_json_null_and_missing_parts_are_none(catalog: Any) -> None:
    """A JSON null and a path that does not exist both test ``is None``."""
    from nextorm import select

    P = catalog
    with db_session:
        P[1].info["video"] = None
        assert names(select(p for p in P if p.info["video"] is None)) == ["Nexus", "iPad"]
        assert names(select(p for p in P if p.info["size"] is not None)) == ["Nexus", "iPad"]
        assert names(select(p for p in P if p.info["nothing"]["deeper"] is None)) == ["Nexus", "iPad"]


def test_in_and_len_of_json_values(catalog: Any) -> None:
    """``"key" in p.info``, ``item in p.info["list"]`` and ``len(p.info["list"])``."""
    from nextorm import select

    P = catalog
    with db_session:
        assert names(select(p for p in P if "Gold" in p.info["colors"])) == ["iPad"]
        assert names(select(p for p in P if "Gold" not in p.info["colors"])) == ["Nexus"]
        assert names(select(p for p in P if "version" in p.info["os"])) == ["Nexus", "iPad"]
        assert names(P.select(lambda p: "size" in p.info)) == ["Nexus", "iPad"]
        assert names(select(p for p in P if len(p.info["colors"]) == 2)) == ["iPad"]
        assert names(select(p for p in P if len(p.tags) > 1)) == ["iPad"]
        assert names(select(p for p in P if "Apple" in p.tags)) == ["iPad"]


def test_a_json_path_takes_str_keys_and_int_indexes(catalog: Any) -> None:
    """Any other key is a QueryError naming the attribute."""
    from nextorm import QueryError

    with pytest.raises(QueryError, match=r"Product\.info"):
        catalog.info[1.5]


def test_selected_json_parts_read_back_as_python_values(catalog: Any) -> None:
    """A selected path reads back as the JSON value there: numbers, str, bool, None, lists, dicts."""
    from nextorm import select

    P = catalog
    with db_session:
        Product = P
        Product(name="Flags", info={"on": True, "off": False, "none": None, "text": "[1]", "n": 0})

        def one(query: Any) -> Any:
            return query.filter(lambda p: p.name == "Flags").first()

        ipad = lambda query: query.filter(lambda p: p.name == "iPad").first()  # noqa: E731
        assert ipad(select(p.info["size"] for p in P)) == 9.7
        assert ipad(select(p.info["os"] for p in P)) == {"type": "iOS", "version": "8"}
        assert ipad(select(p.info["colors"] for p in P)) == ["Gold", "Silver"]
        assert ipad(select(p.info["colors"][-1] for p in P)) == "Silver"
        assert ipad(select(len(p.info["colors"]) for p in P)) == 2
        assert ipad(select(len(p.tags) for p in P)) == 2
        assert one(select(p.info["on"] for p in P)) is True
        assert one(select(p.info["off"] for p in P)) is False
        assert one(select(p.info["none"] for p in P)) is None
        assert one(select(p.info["missing"] for p in P)) is None
        assert one(select(p.info["text"] for p in P)) == "[1]"  # a str, not the list it spells


def test_json_scalars_compare_with_columns_convert_and_average(catalog: Any) -> None:
    """``p.info["name"] == p.name``, ``int(...)``/``str(...)``/``float(...)`` and ``avg()`` of JSON numbers."""
    from nextorm import avg, select

    P = catalog
    with db_session:
        P(name="Same", info={"name": "Same", "version": "12", "size": 2})
        assert names(select(p for p in P if p.info["name"] == p.name)) == ["Same"]
        assert names(select(p for p in P if p.name == p.info["name"])) == ["Same"]
        assert select(int(p.info["version"]) + 1 for p in P if p.name == "Same").first() == 13
        assert select(float(p.info["size"]) for p in P if p.name == "Same").first() == 2.0
        assert sorted(select(str(p.info["os"]["version"]) for p in P if p.info["os"])) == ["8", "9"]
        assert abs(select(avg(p.info["size"]) for p in P).first() - (9.7 + 7 + 2) / 3) < 1e-9


def test_truth_of_json_parts_is_pythons(catalog: Any) -> None:
    """``if p.info["val"]``: null, false, 0, "", [] and {} (and a missing part) are false."""
    from nextorm import select

    P = catalog
    values: dict[str, Any] = {
        "t": True, "f": False, "zero": 0, "one": 1, "empty": "", "x": "x", "nolist": [],
        "list": [1], "nodict": {}, "dict": {"a": 1}, "null": None, "text0": "0", "textfalse": "false",
    }
    with db_session:
        for name, value in values.items():
            P(name=name, info={"val": value})
        P(name="missing", info={})
        truthy = sorted(select(p.name for p in P if p.info["val"]))
        falsy = sorted(select(p.name for p in P if not p.info["val"] and p.name not in ("iPad", "Nexus")))
    assert truthy == sorted(name for name, value in values.items() if value)
    assert falsy == sorted([name for name, value in values.items() if not value] + ["missing"])


def test_wildcards_in_json_paths_are_refused_naming_the_path(catalog: Any) -> None:
    """``[:]`` and ``[...]`` are wildcards neither SQLite nor PostgreSQL has: TranslationError."""
    from nextorm import TranslationError, select

    P = catalog
    with db_session:
        with pytest.raises(TranslationError, match=r"does not support wildcards in JSON paths.*\[:\] in Product\.info\['colors'\]\[:\]"):
            select(p.info["colors"][:] for p in P)[:]
        with pytest.raises(TranslationError, match=r"\[\.\.\.\] in Product\.info\[\.\.\.\]"):
            select(p for p in P if p.info[...][0] == 1)[:]
