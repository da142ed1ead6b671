"""The ``nextorm`` command: ``nextorm migrate ...`` (also ``python -m nextorm migrate ...``)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="nextorm", description="nextorm's command line")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    migrate_parser = commands.add_parser(
        "migrate", help="schema migrations on Alembic (needs nextorm[migrations])"
    )
    try:
        from .migrate import command
    except ImportError as exc:  # the migrations extra is not installed
        migrate_parser.add_argument("arguments", nargs=argparse.REMAINDER)
        parser.parse_args(argv)
        print(
            f"nextorm migrate needs Alembic and SQLAlchemy: pip install 'nextorm[migrations]' ({exc})",
            file=sys.stderr,
        )
        return 2
    command.add_arguments(migrate_parser)
    return command.run(parser.parse_args(argv))
