#!/usr/bin/env bash
# Runs the test suite against the nextorm installed in a Python environment:
#
#   bash scripts/test.sh [--python PY] [--installed] [--pure] [test paths] [pytest options]
#
# By default the suite runs twice, on the compiled hot path and then on the pure-Python twin
# (NEXTORM_NO_EXTENSIONS=1), and stops first if the compiled build did not load, so a broken
# build cannot pass silently. pytest runs from a scratch directory with user site-packages off
# (python -s), so the package under test is the installed one: the checkout's src/ is not
# importable from there (an editable install still maps to it, by design).
#
#   --python PY   the interpreter of the environment under test (default: python on PATH)
#   --installed   fail unless nextorm is imported from PY's site-packages (a wheel install,
#                 not an editable checkout)
#   --pure        the environment holds the pure py3-none-any wheel: check it has no compiled
#                 module and run the suite once, on the twin it falls back to by itself
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

python="$(command -v python || command -v python3 || true)"
installed=0
pure=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --python) python="$2"; shift 2 ;;
        --installed) installed=1; shift ;;
        --pure) pure=1; shift ;;
        *) break ;;
    esac
done
[[ -n "$python" ]] || { echo "scripts/test.sh: no python on PATH; pass --python" >&2; exit 2; }

# Test paths (tests/test_session.py, tests/test_x.py::test_y) are made absolute; without any,
# the whole of tests/ runs. Everything else is handed to pytest as it is, so a path inside an
# option (--ignore=...) must be absolute: pytest runs from the scratch directory.
paths=()
options=()
for arg in "$@"; do
    file="${arg%%::*}"
    if [[ "$arg" != -* && -e "$file" ]]; then
        paths+=("$(cd "$(dirname "$file")" && pwd)/$(basename "$file")${arg#"$file"}")
    else
        options+=("$arg")
    fi
done
[[ ${#paths[@]} -gt 0 ]] || paths=("$repo/tests")

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$scratch"

env -u NEXTORM_NO_EXTENSIONS CHECK_INSTALLED="$installed" CHECK_PURE="$pure" "$python" -s - <<'PY'
import importlib.util
import os
import sys
import sysconfig
from pathlib import Path

import nextorm

package = Path(nextorm.__file__).resolve().parent
kind = "compiled hot path" if nextorm.COMPILED else "pure-Python twin"
print(f"nextorm {nextorm.__version__} from {package} ({kind}) on {sys.executable}")
if os.environ["CHECK_INSTALLED"] == "1":
    site_packages = {Path(sysconfig.get_path(name)).resolve() for name in ("purelib", "platlib")}
    if package.parent not in site_packages:
        sys.exit(f"nextorm: imported from {package}, not from the site-packages of {sys.prefix}")
if os.environ["CHECK_PURE"] == "1":
    if nextorm.COMPILED or importlib.util.find_spec("nextorm._speedups") is not None:
        sys.exit("nextorm: the pure wheel's environment holds a compiled nextorm._speedups")
elif not nextorm.COMPILED:
    sys.exit("nextorm: the compiled hot path did not load (nextorm.COMPILED is False); "
             "build it with: pip install .  (a C compiler and Cython are needed)")
PY

pytest=("$python" -s -m pytest "${paths[@]}" -p no:cacheprovider --rootdir "$repo" ${options[@]+"${options[@]}"})
if [[ "$pure" == 1 ]]; then
    echo "== test suite: pure-Python wheel =="
    env -u NEXTORM_NO_EXTENSIONS "${pytest[@]}" --no-c-extensions
    exit
fi
# Both runs happen even when the first fails, so one CI run reports both implementations.
status=0
echo "== test suite: compiled hot path =="
env -u NEXTORM_NO_EXTENSIONS "${pytest[@]}" || status=$?
echo "== test suite: pure-Python twin (NEXTORM_NO_EXTENSIONS=1) =="
NEXTORM_NO_EXTENSIONS=1 "${pytest[@]}" || status=$?
exit "$status"
