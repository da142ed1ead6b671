"""``python -m nextorm.bench``: run the benchmark CLI."""

from nextorm.bench.cli import main

raise SystemExit(main())
