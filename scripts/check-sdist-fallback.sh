#!/usr/bin/env bash
# Installs the sdist where no C compiler works (CC names a file that does not exist) into a
# fresh virtual environment and checks that the install succeeds, warns, and leaves a working
# pure-Python nextorm (nextorm.COMPILED False):
#
#   bash scripts/check-sdist-fallback.sh SDIST
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
sdist="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m venv "$work/venv"
python="$work/venv/bin/python"
# -v: pip shows a build's output, the warning included, only when asked to; --no-cache-dir:
# build this sdist now rather than reuse a wheel cached from an earlier build.
if ! env -u NEXTORM_REQUIRE_EXTENSIONS -u NEXTORM_NO_EXTENSIONS -u CIBUILDWHEEL CC=/nonexistent/cc \
    "$python" -m pip install -v --no-cache-dir "$sdist" >"$work/install.log" 2>&1; then
    cat "$work/install.log"
    echo "the sdist did not install without a compiler" >&2
    exit 1
fi
grep "WARNING: nextorm: the compiled session layer could not be built" "$work/install.log" \
    || { cat "$work/install.log"; echo "the fallback install did not warn" >&2; exit 1; }

cd "$work"
"$python" -s -c '
import sys, nextorm
sys.exit(f"nextorm.COMPILED is {nextorm.COMPILED} after a build without a compiler" if nextorm.COMPILED else 0)
'
"$python" -s "$repo/examples/quickstart.py" >"$work/quickstart.log" || { cat "$work/quickstart.log"; exit 1; }
head -1 "$work/quickstart.log"
echo "sdist without a compiler: installed the pure-Python twin, with a warning"
