"""`nextorm migrate` end to end in a project directory, as README "Migrations" shows it:
each command a new process, the Database named by --db module:attribute or pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MODELS = """\
from nextorm import Database, Optional, Required
db = Database({bind})

class Person(db.Entity):
    name = Required(str)
{extra}
"""


def write_models(project: Path, bind: str, extra: str = "") -> None:
    (project / "models.py").write_text(MODELS.format(bind=bind, extra=extra))
    for cached in (project / "__pycache__").glob("models*"):
        cached.unlink()


def nextorm(
    project: Path, *args: str, script: bool = False, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the command in ``project``: ``python -m nextorm`` or (``script``) the installed ``nextorm``."""
    command = (
        [str(Path(sys.executable).with_name("nextorm"))] if script else [sys.executable, "-m", "nextorm"]
    )
    done = subprocess.run(
        [*command, *args], cwd=project, capture_output=True, text=True, timeout=120, env={**os.environ}
    )
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, str]:
    """An empty project directory and the Database(...) arguments of its models.py.

    The command does the same on both databases (the other migration tests run the same steps
    through the functions on SQLite and PostgreSQL); here it runs on a SQLite file.
    """
    directory = tmp_path / "project"
    directory.mkdir()
    return directory, f"'sqlite', {str(tmp_path / 'app.db')!r}, create_db=True"


def test_init_make_upgrade_status_downgrade_sql(project: tuple[Path, str]) -> None:
    """The everyday workflow: init, make, review, upgrade; change an entity; make, upgrade, downgrade."""
    path, bind = project
    write_models(path, bind)
    db = ["migrate", "--db", "models:db"]
    assert "Created migrations directory" in nextorm(path, *db, "init").stderr
    made = nextorm(path, *db, "make", "-m", "people")
    assert "Wrote" in made.stderr
    first = next((path / "migrations" / "versions").glob("*_people.py"))
    assert "op.create_table(" in first.read_text()
    assert "pending" in nextorm(path, *db, "status").stdout
    nextorm(path, *db, "upgrade", script=True)
    assert "up to date with the entities" in nextorm(path, *db, "status").stdout

    write_models(path, bind, "    nickname = Optional(str)\n    visits = Required(int, default=3)\n")
    changed = nextorm(path, *db, "status").stdout
    assert "differ from the database" in changed and "nickname" in changed
    made = nextorm(path, *db, "make", "-m", "nicknames and visits")
    assert "NOTE:" in made.stderr and "'3'" in made.stderr
    nextorm(path, *db, "upgrade")
    assert "up to date" in nextorm(path, *db, "status").stdout
    assert "No changes" in nextorm(path, *db, "make", "-m", "nothing").stderr

    nextorm(path, *db, "downgrade", "-1")
    assert "pending" in nextorm(path, *db, "status").stdout
    nextorm(path, *db, "downgrade", "base")
    sql = nextorm(path, *db, "sql").stdout
    assert "CREATE TABLE" in sql and "nickname" in sql


def test_configured_in_pyproject_and_errors_on_stderr(project: tuple[Path, str]) -> None:
    """[tool.nextorm] names the Database and directory once; a bad command exits 1 with a clear error."""
    path, bind = project
    write_models(path, bind)
    (path / "pyproject.toml").write_text('[tool.nextorm]\ndb = "models:db"\ndirectory = "schema_versions"\n')
    nextorm(path, "migrate", "init")
    assert (path / "schema_versions" / "env.py").exists()
    failed = nextorm(path, "migrate", "make", "-m", "x", "--rename", "nothing", ok=False)
    assert failed.returncode == 1
    assert "nextorm migrate: error: A rename is written old=new" in failed.stderr
    failed = nextorm(path, "migrate", "--db", "models:nothing", "status", ok=False)
    assert failed.returncode == 1 and "'models:nothing' is not a nextorm Database" in failed.stderr
    assert list((path / "schema_versions" / "versions").iterdir()) == []


def test_without_the_migrations_extra_the_command_says_what_to_install(tmp_path: Path) -> None:
    """With no Alembic importable, `nextorm migrate` exits 2 naming `nextorm[migrations]`."""
    code = "import sys; sys.modules['alembic'] = None; from nextorm.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", code, "migrate", "status"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "pip install 'nextorm[migrations]'" in done.stderr
