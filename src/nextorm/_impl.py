"""Selects the compiled hot path or its pure-Python twin.

``NEXTORM_NO_EXTENSIONS=1`` (any non-empty value but ``0``) forces the twin;
on interpreters other than CPython the twin is used; otherwise the compiled
module is used when it imports. ``COMPILED`` says what actually loaded.
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING

NO_EXTENSIONS = os.environ.get("NEXTORM_NO_EXTENSIONS", "") not in ("", "0")

if TYPE_CHECKING:
    from . import _speedups_py as impl

    COMPILED = False
elif NO_EXTENSIONS or platform.python_implementation() != "CPython":
    from . import _speedups_py as impl

    COMPILED = False
else:
    try:
        from . import _speedups as impl
    except ImportError:
        from . import _speedups_py as impl

        COMPILED = False
    else:
        COMPILED = True

CREATED = impl.CREATED
LOADED = impl.LOADED
MODIFIED = impl.MODIFIED
DELETED = impl.DELETED
GONE = impl.GONE
current_session = impl.current_session
borrowed_task = impl.borrowed_task
EntityBase = impl.EntityBase
EntityMetaBase = impl.EntityMetaBase
Column = impl.Column
SessionBase = impl.SessionBase
CacheBase = impl.CacheBase
current_task = impl.current_task
enter_session = impl.enter_session
exit_session = impl.exit_session
lookup = impl.lookup
materialize = impl.materialize
track = impl.track
only_mapped = impl.only_mapped
column_values = impl.column_values
loaded_bits = impl.loaded_bits
checked_columns = impl.checked_columns
mark_saved_all = impl.mark_saved_all
shape_runs = impl.shape_runs
match_keys = impl.match_keys
register_keys = impl.register_keys
record_undo_all = impl.record_undo_all
attribute_dict = impl.attribute_dict
init_new = impl.init_new
plain_params = impl.plain_params
keyword_sql = impl.keyword_sql
sql_debug_state = impl.sql_debug_state
QueryStat = impl.QueryStat
LazyIterator = impl.LazyIterator
add_run = impl.add_run
read_rows = impl.read_rows
read_now = impl.read_now
session_cache = impl.session_cache
UNLEARNED_LOADS = impl.UNLEARNED_LOADS
learn_unique = impl.learn_unique
load_rows = impl.load_rows
get_now = impl.get_now
fetch_now = impl.fetch_now
use_entity_iterator = impl.use_entity_iterator
BOUND_TYPES = impl.BOUND_TYPES
SHAPED_OPERATORS = impl.SHAPED_OPERATORS
shape_of = impl.shape_of
select_sql_now = impl.select_sql_now
select_shape = impl.select_shape
use_condition_classes = impl.use_condition_classes
SetData = impl.SetData
members_now = impl.members_now
take_members = impl.take_members

__all__ = [
    "BOUND_TYPES",
    "COMPILED",
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
