"""The harness running Pony's suite (``scripts/pony-tests.py``) gives each known failure the reason
recorded in ``tests/pony_compat/reasons.md``."""

from __future__ import annotations

import importlib.util
import sys
import unittest
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pony_tests", ROOT / "scripts" / "pony-tests.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_failure_gets_its_own_reason_else_its_class_or_module_reason() -> None:
    """A test's own line wins over its class's, which wins over its module's; others have none."""
    harness = _harness()
    reasons = {
        "pony.orm.tests.test_a": "module",
        "pony.orm.tests.test_a.TestA": "class",
        "pony.orm.tests.test_a.TestA.test_1": "own",
    }
    assert harness.reason_for("pony.orm.tests.test_a.TestA.test_1", reasons) == "own"
    assert harness.reason_for("pony.orm.tests.test_a.TestA.test_2", reasons) == "class"
    assert harness.reason_for("pony.orm.tests.test_a.TestB.test_1", reasons) == "module"
    assert harness.reason_for("pony.orm.tests.test_b.TestB.test_1", reasons) is None


def test_recorded_reasons_name_pony_tests() -> None:
    """Every line of reasons.md is read, names one of Pony's test modules and gives a reason."""
    reasons = _harness().known_reasons()
    listed = [
        line
        for line in (ROOT / "tests" / "pony_compat" / "reasons.md").read_text().splitlines()
        if line.startswith("- `")
    ]
    assert len(reasons) == len(listed) > 0
    for test, reason in reasons.items():
        assert test.startswith("pony.orm.tests.test_") and len(reason) > 8


def test_a_passing_test_is_recorded_with_the_views_of_private_names_it_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The report counts the tests passing through the compatibility package's views of Pony's
    private names: each outcome lists the views its test read, not those read before it ran."""
    harness = _harness()
    views = ModuleType(harness.VIEWS_MODULE)
    views.touched = set()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, harness.VIEWS_MODULE, views)

    class Case(unittest.TestCase):
        def test_reads(self) -> None:
            views.touched.add("_vals_")  # type: ignore[attr-defined]

        def test_plain(self) -> None:
            pass

        def test_fails(self) -> None:
            views.touched.add("_indexes_")  # type: ignore[attr-defined]
            self.fail("differs")

    views.touched.add("_bits_")  # type: ignore[attr-defined]  # read by a class's setup
    recorder = harness._Recorder()
    unittest.TestSuite([Case("test_reads"), Case("test_plain"), Case("test_fails")]).run(recorder)
    assert [(o["test"].rsplit(".", 1)[1], o["outcome"], o.get("views")) for o in recorder.outcomes] == [
        ("test_reads", "passed", ["_vals_"]),
        ("test_plain", "passed", None),
        ("test_fails", "failed", ["_indexes_"]),
    ]
