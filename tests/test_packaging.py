"""Packaging: the compiled-module list, what the installed wheel holds, what a fresh import loads."""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.metadata
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import nextorm

REPO = Path(__file__).resolve().parents[1]
DIST = importlib.metadata.distribution("nextorm")


def compiled_modules() -> set[str]:
    """The ``COMPILED_MODULES`` tuple of setup.py, read without running setup.py."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == ["COMPILED_MODULES"]:
            return set(ast.literal_eval(node.value))
    raise AssertionError("setup.py defines no COMPILED_MODULES")


def editable() -> bool:
    """Whether nextorm is an editable install, whose files are the checkout's rather than a wheel's."""
    direct_url = DIST.read_text("direct_url.json")
    return bool(direct_url and json.loads(direct_url).get("dir_info", {}).get("editable"))


def pure_wheel() -> bool:
    """Whether the installed wheel is the pure ``py3-none-any`` one, which has no compiled module."""
    return "Root-Is-Purelib: true" in (DIST.read_text("WHEEL") or "")


def fresh_import(**env: str) -> tuple[bool, str]:
    """``nextorm.COMPILED`` and the hot-path module name, as a new interpreter sees them."""
    environ = {k: v for k, v in os.environ.items() if k != "NEXTORM_NO_EXTENSIONS"} | env
    code = "import nextorm, nextorm._impl; print(nextorm.COMPILED, nextorm._impl.impl.__name__)"
    flags = ["-s"] if sys.flags.no_user_site else []
    done = subprocess.run(
        [sys.executable, *flags, "-c", code], env=environ, cwd=REPO / "tests", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    compiled, module = done.stdout.split()
    return compiled == "True", module


installed_wheel = pytest.mark.skipif(
    editable(), reason="nextorm is an editable install: there is no wheel to inspect"
)


def test_compiled_modules_match_the_pyx_files() -> None:
    """setup.py's ``COMPILED_MODULES`` names exactly the .pyx files under src/."""
    on_disk = {
        ".".join(path.relative_to(REPO / "src").with_suffix("").parts)
        for path in (REPO / "src").rglob("*.pyx")
    }
    assert on_disk, "no .pyx file under src/"
    assert compiled_modules() == on_disk


def test_version_is_the_package_version() -> None:
    """The distribution's version is ``nextorm.__version__``, its single source."""
    assert DIST.version == nextorm.__version__


def test_fresh_import_loads_the_compiled_module() -> None:
    """``import nextorm`` in a new interpreter loads ``nextorm._speedups`` (unless the pure wheel is installed)."""
    if pure_wheel():
        assert fresh_import() == (False, "nextorm._speedups_py")
    else:
        assert fresh_import() == (True, "nextorm._speedups")


def test_fresh_import_with_no_extensions_loads_the_pure_twin() -> None:
    """``NEXTORM_NO_EXTENSIONS=1`` at import time makes a new interpreter load the pure twin."""
    assert fresh_import(NEXTORM_NO_EXTENSIONS="1") == (False, "nextorm._speedups_py")


@installed_wheel
def test_installed_wheel_is_the_imported_package() -> None:
    """The distribution whose files the next tests inspect is the one ``import nextorm`` found."""
    assert Path(DIST.locate_file("nextorm/__init__.py")).resolve() == Path(nextorm.__file__).resolve()


@installed_wheel
def test_wheel_ships_typing_files_and_no_build_sources() -> None:
    """The wheel holds py.typed and the ``_speedups`` stub, and no .pyx, generated C or annotation HTML."""
    files = {str(f) for f in DIST.files or ()}
    assert {"nextorm/py.typed", "nextorm/_speedups.pyi"} <= files
    assert [f for f in files if f.endswith((".pyx", ".c", ".html"))] == []


@installed_wheel
def test_wheel_holds_exactly_the_compiled_modules() -> None:
    """A compiled wheel holds one extension per ``COMPILED_MODULES`` entry; the pure wheel holds none."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    extensions = set()
    for file in DIST.files or ():
        name = file.name
        if name.endswith(suffixes):
            stem = name[: -len(next(s for s in suffixes if name.endswith(s)))]
            extensions.add(".".join((*file.parent.parts, stem)))
    assert extensions == (set() if pure_wheel() else compiled_modules())


@pytest.mark.skipif(
    not sysconfig.get_config_var("Py_GIL_DISABLED"),
    reason="only a free-threaded interpreter can re-enable the GIL",
)
def test_free_threaded_interpreter_runs_the_compiled_module_with_the_gil() -> None:
    """On a free-threaded build, importing the compiled module re-enables the GIL (README: Free-threaded Python)."""
    code = "import sys, nextorm; print(nextorm.COMPILED, sys._is_gil_enabled())"
    environ = {k: v for k, v in os.environ.items() if k not in ("NEXTORM_NO_EXTENSIONS", "PYTHON_GIL")}
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, cwd=REPO / "tests", capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    compiled, gil_enabled = done.stdout.split()
    assert gil_enabled == compiled
