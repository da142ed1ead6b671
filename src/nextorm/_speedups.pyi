"""Stub of the compiled hot path; the names and signatures are those of ``_speedups_py``."""

from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from typing import Any, Final

__all__ = [
    "BOUND_TYPES",
    "CREATED",
    "DELETED",
    "GONE",
    "LOADED",
    "MODIFIED",
    "SHAPED_OPERATORS",
    "UNLEARNED_LOADS",
    "CacheBase",
    "Column",
    "EntityBase",
    "EntityMetaBase",
    "LazyIterator",
    "QueryStat",
    "SessionBase",
    "SetData",
    "add_run",
    "attribute_dict",
    "borrowed_task",
    "checked_columns",
    "column_values",
    "current_session",
    "current_task",
    "enter_session",
    "exit_session",
    "fetch_now",
    "get_now",
    "init_new",
    "keyword_sql",
    "learn_unique",
    "load_rows",
    "loaded_bits",
    "lookup",
    "mark_saved_all",
    "match_keys",
    "materialize",
    "members_now",
    "only_mapped",
    "plain_params",
    "read_now",
    "read_rows",
    "record_undo_all",
    "register_keys",
    "select_shape",
    "select_sql_now",
    "session_cache",
    "shape_of",
    "shape_runs",
    "sql_debug_state",
    "take_members",
    "track",
    "use_condition_classes",
    "use_entity_iterator",
]

CREATED: Final = 1
LOADED: Final = 2
MODIFIED: Final = 3
DELETED: Final = 4
GONE: Final = 5

current_session: ContextVar[Any]
borrowed_task: ContextVar[Any]
sql_debug_state: ContextVar[tuple[bool, bool]]

class SessionBase:
    maps: dict[type, dict[Any, Any]]
    owner: Any
    manager: Any
    caches: dict[Any, Any]
    depth: int
    token: Any
    def __init__(self, manager: Any) -> None: ...

class CacheBase:
    session: Any
    is_alive: bool
    strict: bool
    readonly: bool
    dirty: dict[Any, None]
    def __init__(self, session: Any, strict: bool = False) -> None: ...

class EntityBase:
    _cache_: Any
    _status_: int
    _rbits_: int
    _wbits_: int
    _orig_: dict[int, Any] | None
    _new_plan_: Any
    def __init__(self, *args: Any, **kwargs: Any) -> None: ...
    def _init_full_(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None: ...
    def _init_state_(self, cache: CacheBase, status: int) -> None: ...
    def __reduce_ex__(self, protocol: Any) -> Any: ...

class EntityMetaBase(type):
    def __getitem__(cls, key: Any) -> Any: ...
    def __getattr__(cls, name: str) -> Any: ...

class Column:
    tracked: bool
    readonly: bool
    plain_check: tuple[int, bool, Any, Any] | None
    # hooks a subclass defines
    _load_: Callable[[Any], Any]
    _read_after_session_: Callable[[Any], Any]
    _deleted_: Callable[[Any], Any]
    _check_assign_: Callable[[Any, Any], None]
    _validate_: Callable[[Any, Any], Any]
    _before_change_: Callable[[Any, Any, Any], None]
    _unrepeatable_: Callable[[Any, Any, Any], None]
    @property
    def index(self) -> int: ...
    @property
    def bit(self) -> int: ...
    def __init__(self) -> None: ...
    def _bind_slot_(self, member: Any, index: int) -> None: ...
    def __get__(self, obj: Any, cls: Any = None) -> Any: ...
    def __set__(self, obj: Any, value: Any) -> None: ...
    def __delete__(self, obj: Any) -> None: ...
    def get_raw(self, obj: Any, default: Any = None) -> Any: ...
    def set_raw(self, obj: Any, value: Any) -> None: ...
    def clear_raw(self, obj: Any) -> None: ...
    def is_loaded(self, obj: Any) -> bool: ...
    def passes_plain(self, value: Any) -> bool: ...

def current_task() -> Any: ...
def enter_session(manager: Any) -> Any: ...
def exit_session(manager: Any, exc_type: Any = None, exc: Any = None, tb: Any = None) -> None: ...
def lookup(cls: Any, key: Any) -> Any: ...
def materialize(
    cls: Any,
    cache: CacheBase,
    imap: dict[Any, Any],
    columns: Sequence[Column],
    converters: Sequence[Any],
    npk: int,
    check_mask: int,
    rows: Iterable[Sequence[Any]],
) -> list[Any]: ...
def track(objects: Iterable[Any]) -> None: ...
def only_mapped(maps: Iterable[dict[Any, Any]]) -> bool: ...
def column_values(
    objs: Iterable[Any],
    columns: Sequence[Column],
    converters: Sequence[Any],
    known: bool = False,
    known_from: int = 0,
) -> list[tuple[Any, ...]]: ...
def loaded_bits(obj: Any, columns: Sequence[Column]) -> int: ...
def checked_columns(obj: Any, columns: Sequence[Column], check_mask: int) -> tuple[tuple[int, bool], ...]: ...
def attribute_dict(obj: Any, names: Sequence[str], attrs: Sequence[Any]) -> dict[str, Any]: ...
def mark_saved_all(objs: Iterable[Any], status: int, saving: list[Any]) -> None: ...
def shape_runs(objs: Iterable[Any], optimistic: bool) -> list[tuple[tuple[Any, ...], list[Any]]]: ...
def match_keys(rows: Sequence[tuple[Any, ...]], returned: Sequence[Sequence[Any]]) -> list[Any] | None: ...
def register_keys(
    objs: Sequence[Any], keys: Sequence[Any], column: Column, identity_map: dict[Any, Any]
) -> int: ...
def record_undo_all(undo: dict[Any, Any], saving: Iterable[tuple[Any, int, Any, int]]) -> None: ...
def init_new(obj: Any, plan: Any, kwargs: dict[str, Any]) -> bool: ...
def keyword_sql(
    known: dict[Any, Any], values: dict[str, Any], dialect: Any
) -> tuple[str, list[Any]] | None: ...
def plain_params(columns: Sequence[Column], values: Iterable[Any]) -> list[Any] | None: ...

class LazyIterator:
    def __iter__(self) -> LazyIterator: ...
    def __next__(self) -> Any: ...

class QueryStat:
    sql: str | None
    db_count: int
    sum_time: float
    min_time: float | None
    max_time: float | None
    def __init__(self, sql: str | None) -> None: ...
    @property
    def avg_time(self) -> float | None: ...
    def add(self, seconds: float) -> None: ...
    def merge(self, other: QueryStat) -> None: ...
    def copy(self) -> QueryStat: ...

def add_run(stats: dict[str | None, QueryStat], sql: str, seconds: float, limit: int) -> None: ...
def read_rows(provider: Any, conn: Any, sql: str, params: Any) -> list[Any]: ...
def session_cache(database: Any) -> Any: ...
def read_now(cache: Any, sql: str, params: Any) -> list[Any] | None: ...

UNLEARNED_LOADS: int

def learn_unique(cache: Any, objects: Iterable[Any], entity: Any) -> None: ...
def load_rows(
    entity: Any, cache: Any, attrs: Sequence[Any], converters: Sequence[Any], rows: Any
) -> list[Any]: ...
def get_now(entity: Any, values: dict[str, Any]) -> list[Any] | None: ...
def fetch_now(entity: Any, sql: str, params: Any) -> list[Any] | None: ...
def use_entity_iterator(iterator_class: Any) -> None: ...

class SetData:
    items: dict[Any, None]
    loaded: bool
    def __init__(self) -> None: ...

def members_now(attr: Any, owner: Any) -> SetData | None: ...
def take_members(attr: Any, owner: Any, pk: Any, members: Iterable[Any]) -> SetData: ...

BOUND_TYPES: frozenset[type]
SHAPED_OPERATORS: frozenset[str]

def use_condition_classes(compare: Any, bool_op: Any, not_: Any) -> None: ...
def shape_of(conditions: Iterable[Any], key: list[Any], params: list[Any]) -> bool: ...
def select_sql_now(query: Any, dialect: Any, count: bool, limit: Any) -> tuple[str, list[Any]] | None: ...
def select_shape(
    query: Any, count: bool, limit: Any, keys: Any
) -> tuple[tuple[Any, ...], list[Any]] | None: ...
