"""``show()``: objects, query results and entity declarations printed as text tables, as Pony prints them."""

from __future__ import annotations

import pprint
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any

from ._impl import EntityBase, EntityMetaBase

__all__ = ["CONSOLE_WIDTH", "describe", "show", "show_objects"]

#: the width tables are fitted to unless a width is given
CONSOLE_WIDTH = 80


def show(x: Any, width: int | None = None, stream: IO[str] | None = None) -> None:
    """Print ``x``: an entity's declaration, an object as a one-row table, a query's rows as a table."""
    out = sys.stdout if stream is None else stream
    if isinstance(x, EntityMetaBase) and getattr(x, "_database_", None) is not None:
        out.write(describe(x) + "\n")
    elif isinstance(x, EntityBase):
        out.write(f"instance of {type(x).__name__}\n")
        show_objects(type(x), [x], width, out)
    elif hasattr(x, "show"):
        x.show(width=width, stream=out)
    else:
        pprint.pprint(x, stream=out)


def show_objects(
    entity: Any, objects: Iterable[Any], width: int | None = None, stream: IO[str] | None = None
) -> None:
    """Print ``objects`` of ``entity`` as a table of their loaded-by-default attributes."""
    width = width or CONSOLE_WIDTH
    attrs = [a for a in entity._attrs_ if not a.lazy][: max(width // 5, 1)]
    rows = [[_text(attr.__get__(obj, entity)) for attr in attrs] for obj in objects]
    _write_table([attr.name for attr in attrs], rows, width, sys.stdout if stream is None else stream)


def describe(entity: Any) -> str:
    """The declaration of ``entity`` as Python text: its attributes and their main options."""
    lines = [f"class {entity.__name__}(Entity):"]
    for attr in (*entity._attrs_, *entity._collections_):
        lines.append(f"    {attr.name} = {_declaration(attr)}")
    if entity._npk_ > 1:
        lines.append(f"    PrimaryKey({', '.join(a.name for a in entity._pk_attrs_)})")
    return "\n".join(lines)


def _declaration(attr: Any) -> str:
    if attr.is_collection:
        return f"Set({attr.py_type.__name__})"
    if attr.is_pk and attr.entity._npk_ == 1:
        kind = "PrimaryKey"
    else:
        kind = "Required" if attr.is_required else "Optional"
    options = [attr.py_type.__name__ if isinstance(attr.py_type, type) else repr(attr.py_type)]
    if attr.auto:
        options.append("auto=True")
    if attr.unique and not attr.is_pk:
        options.append("unique=True")
    if attr.default is not None:
        options.append(f"default={attr.default!r}")
    if attr.lazy and not attr.is_pk:
        options.append("lazy=True")
    return f"{kind}({', '.join(options)})"


def _text(value: Any) -> str:
    return str(value).replace("\n", " ")


def _write_table(names: Sequence[str], rows: list[list[str]], width: int, stream: IO[str]) -> None:
    """Columns as wide as their widest value, cut (with ``...``) when the table is wider than ``width``."""
    widths = [max([len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(names)]
    available = width - len(names) + 1
    while sum(widths) > available and max(widths) > 5:
        widest = widths.index(max(widths))
        widths[widest] -= 1

    def cell(text: str, size: int) -> str:
        return text.ljust(size) if len(text) <= size else text[: size - 3] + "..."

    stream.write("|".join(cell(name, size) for name, size in zip(names, widths)) + "\n")
    stream.write("+".join("-" * size for size in widths) + "\n")
    for row in rows:
        stream.write("|".join(cell(text, size) for text, size in zip(row, widths)) + "\n")
