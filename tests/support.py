"""Helpers test modules import (conftest.py holds only fixtures and hooks)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
from typing import Any


def sync_id_sequence(conn: Any, table: str, column: str = "id") -> None:
    """Call after another client inserted rows with explicit ids into ``table``.

    On PostgreSQL an identity column's sequence does not advance for explicit ids, so the next
    auto id would clash with them: this moves it to ``max(column)``. SQLite needs nothing (no-op).
    """
    if isinstance(conn, sqlite3.Connection):
        return
    conn.execute(
        f'SELECT setval(pg_get_serial_sequence(\'"{table}"\', \'{column}\'), max("{column}")) FROM "{table}"'
    )


# -- servers of the test's own (PostgreSQL clusters, PgBouncer) -----------------------------------

#: the OS user the servers run as (initdb and pgbouncer refuse to run as root)
SERVER_USER = "postgres"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_binary(name: str) -> str:
    """The path of a PostgreSQL server program (``initdb``, ``pg_ctl``, ...) of the newest installed version."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (apt-get install postgresql)")
    return found[-1]


def _owned_tempdir(prefix: str) -> str:
    path = tempfile.mkdtemp(prefix=prefix)
    if os.geteuid() == 0:
        import pwd  # POSIX only, and only needed when running as root

        user = pwd.getpwnam(SERVER_USER)
        os.chown(path, user.pw_uid, user.pw_gid)
    return path


def _as_server_user(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    user = None if os.geteuid() != 0 else SERVER_USER
    return subprocess.run(args, user=user, check=True, capture_output=True, text=True, timeout=120, **kwargs)


class PostgresCluster:
    """A PostgreSQL server of the test's own on a free loopback port; ``stop()`` stops and removes it.

    ``primary=`` makes it a streaming replica of that cluster (``pg_basebackup -R``).
    """

    def __init__(self, max_connections: int = 100, primary: PostgresCluster | None = None) -> None:
        self.port = free_port()
        self.dir = _owned_tempdir("nextorm-pg-")
        self.data = os.path.join(self.dir, "data")
        if primary is None:
            _as_server_user(
                [
                    postgres_binary("initdb"),
                    "-D",
                    self.data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ]
            )
        else:
            _as_server_user(
                [
                    postgres_binary("pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary.port),
                    "-U",
                    "postgres",
                    "-D",
                    self.data,
                    "-R",
                    "-X",
                    "stream",
                    "--checkpoint=fast",
                ]
            )
        settings = {
            "port": self.port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": self.dir,
            "max_connections": max_connections,
            "shared_buffers": "32MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "replica",
            "max_wal_senders": 4,
        }
        options = " ".join(f"-c {key}={value}" for key, value in settings.items())
        try:
            _as_server_user(
                [
                    postgres_binary("pg_ctl"),
                    "-D",
                    self.data,
                    "-l",
                    os.path.join(self.dir, "log"),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ]
            )
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def dsn(self, database: str = "postgres") -> str:
        """The address of one of its databases."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """Stop the server (fast, no checkpoint wait) and remove its files; once stopped, nothing."""
        if not os.path.exists(self.dir):
            return
        try:
            _as_server_user([postgres_binary("pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class PgBouncer:
    """PgBouncer in transaction mode on a free loopback port, in front of ``server``; ``stop()`` ends it."""

    def __init__(self, server: PostgresCluster, pool_size: int = 5) -> None:
        self.port = free_port()
        self.dir = _owned_tempdir("nextorm-bouncer-")
        users = os.path.join(self.dir, "users.txt")
        with open(users, "w") as file:
            file.write('"postgres" ""\n')
        config = os.path.join(self.dir, "pgbouncer.ini")
        with open(config, "w") as file:
            file.write(
                "[databases]\n"
                f"* = host=127.0.0.1 port={server.port}\n"
                "[pgbouncer]\n"
                "listen_addr = 127.0.0.1\n"
                f"listen_port = {self.port}\n"
                f"unix_socket_dir = {self.dir}\n"
                "auth_type = trust\n"
                f"auth_file = {users}\n"
                "pool_mode = transaction\n"
                f"default_pool_size = {pool_size}\n"
                "max_client_conn = 1000\n"
                "ignore_startup_parameters = extra_float_digits\n"
            )
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        self.process = subprocess.Popen(
            [binary, config],
            user=None if os.geteuid() != 0 else SERVER_USER,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("PgBouncer did not start") from None
                time.sleep(0.05)

    def dsn(self, database: str = "postgres") -> str:
        """The address of one of the server's databases through PgBouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        """End PgBouncer and remove its files."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def note_database(dsn: str, schema: str, application_name: str, asyncio: bool = False, **options: Any) -> Any:
    """A Database (AsyncDatabase when ``asyncio``) on ``dsn`` in ``schema`` with one entity, Note, its table
    created and its connections closed; ``application_name`` lets a test count its server connections."""
    from nextorm import AsyncDatabase, Database, PrimaryKey, Required

    database = (AsyncDatabase if asyncio else Database)(
        "postgres", dsn=dsn, options=f"-c search_path={schema}", application_name=application_name, **options
    )

    class Note(database.Entity):  # type: ignore[name-defined]
        _table_ = "note"
        id = PrimaryKey(int, auto=True)
        text = Required(str)

    database.generate_mapping(create_tables=True)
    database.disconnect()
    database.Note = Note  # type: ignore[attr-defined]
    return database
