#!/usr/bin/env bash
# Runs the whole test suite twice: on the compiled hot path, then on the pure-Python twin.
# Fails when the compiled build did not load, so a broken build cannot pass silently.
set -euo pipefail
cd "$(dirname "$0")/.."

python - <<'PY'
import sys
import nextorm
if not nextorm.COMPILED:
    sys.exit("nextorm: the compiled hot path did not load (nextorm.COMPILED is False); "
             "build it with: pip install -e .  (a C compiler and Cython are needed)")
print(f"nextorm {nextorm.__version__}: compiled hot path loaded")
PY

echo "== test suite: compiled hot path =="
python -m pytest "$@"
echo "== test suite: pure-Python twin (NEXTORM_NO_EXTENSIONS=1) =="
NEXTORM_NO_EXTENSIONS=1 python -m pytest "$@"
