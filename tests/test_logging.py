"""SQL logging (README: Logging): statements reach the application's logging set-up, timed, and stdout only without one."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from nextorm import Database, Required, TransactionIntegrityError, db_session, set_sql_debug

TIMING = re.compile(r"-- \d+\.\d{3} ms")

APPLICATION = """
import logging, sys
from nextorm import Database, Required, db_session, set_sql_debug

{logging_setup}
db = Database("sqlite", ":memory:")

class Person(db.Entity):
    name = Required(str)

db.generate_mapping(create_tables=True)
set_sql_debug(True)
with db_session:
    Person.get(name="Ann")
"""


def run_application(logging_setup: str) -> subprocess.CompletedProcess[str]:
    """Run a small application that switches SQL debugging on after ``logging_setup``; its output."""
    code = APPLICATION.format(logging_setup=textwrap.dedent(logging_setup))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def people(db: Database) -> Iterator[type]:
    """A mapped ``Person`` entity with a unique name, and SQL debugging switched off afterwards."""

    class Person(db.Entity):
        name = Required(str, unique=True)

    db.generate_mapping(create_tables=True)
    yield Person
    set_sql_debug(False, show_values=False)


def test_sql_shows_through_a_warning_level_basic_config() -> None:
    """After ``logging.basicConfig(level=WARNING)``, ``set_sql_debug(True)`` still shows SQL, through logging only."""
    done = run_application("logging.basicConfig(level=logging.WARNING, format='%(name)s %(message)s')")
    assert done.stdout == ""
    assert 'nextorm.sql SELECT "id", "name" FROM "Person" WHERE "name" = ?' in done.stderr
    assert TIMING.search(done.stderr)


def test_sql_prints_to_stdout_when_logging_is_not_configured() -> None:
    """With no logging handler anywhere, ``set_sql_debug(True)`` prints the statements to stdout."""
    done = run_application("")
    assert 'SELECT "id", "name" FROM "Person" WHERE "name" = ?' in done.stdout
    assert TIMING.search(done.stdout)
    assert done.stderr == ""


def test_a_level_set_on_the_sql_logger_is_respected() -> None:
    """An application that sets ``nextorm.sql`` (or ``nextorm``) above INFO sees no statements."""
    for logger in ("nextorm.sql", "nextorm"):
        done = run_application(
            f"logging.basicConfig()\nlogging.getLogger({logger!r}).setLevel(logging.WARNING)"
        )
        assert (done.stdout, done.stderr) == ("", "")


def test_records_carry_the_statement_and_its_duration(people: type, caplog: pytest.LogCaptureFixture) -> None:
    """Each record has ``sql``, ``duration`` (seconds) and ``failed``; parameters only with ``show_values``."""
    caplog.set_level(logging.INFO, logger="nextorm.sql")
    set_sql_debug(True)
    with db_session:
        people.get(name="Ann")
    (record,) = [r for r in caplog.records if r.name == "nextorm.sql"]
    assert record.levelno == logging.INFO
    assert record.sql.lower().startswith('select "id", "name" from "person"')  # type: ignore[attr-defined]
    assert record.params is None  # type: ignore[attr-defined]
    assert 0 <= record.duration < 60 and record.failed is False  # type: ignore[attr-defined]
    assert TIMING.fullmatch(record.getMessage().split("\n")[-1])
    assert f"{record.duration * 1000:.3f} ms" in record.getMessage()  # type: ignore[attr-defined]

    caplog.clear()
    set_sql_debug(True, show_values=True)
    with db_session:
        people.get(name="Ann")
    (record,) = [r for r in caplog.records if r.name == "nextorm.sql"]
    assert "Ann" in record.params  # type: ignore[attr-defined]


def test_a_failed_statement_is_logged_as_failed(people: type, caplog: pytest.LogCaptureFixture) -> None:
    """A statement the database refuses is logged with its duration and marked ``(failed)``."""
    with db_session:
        people(name="Ann")
    caplog.set_level(logging.INFO, logger="nextorm.sql")
    set_sql_debug(True)
    with pytest.raises(TransactionIntegrityError), db_session:
        people(name="Ann")
    inserts = [r for r in caplog.records if r.name == "nextorm.sql" and r.sql.startswith("INSERT")]  # type: ignore[attr-defined]
    assert len(inserts) == 1 and inserts[0].failed is True  # type: ignore[attr-defined]
    assert re.search(r"-- \d+\.\d{3} ms \(failed\)$", inserts[0].getMessage())
