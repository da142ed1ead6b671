"""Declares the optional Cython extension; all other metadata is in pyproject.toml.

``NEXTORM_NO_EXTENSIONS=1`` skips the extension (the pure ``py3-none-any`` wheel).
``NEXTORM_REQUIRE_EXTENSIONS=1`` (and any cibuildwheel build) turns a failed compile into an
error; otherwise a failed compile falls back to the pure-Python twin with a warning.
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

# Every compiled module; tests/test_packaging.py checks this matches the .pyx files on disk.
COMPILED_MODULES = ("nextorm._speedups",)


def _flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


DISABLE = _flag("NEXTORM_NO_EXTENSIONS")
REQUIRE = _flag("NEXTORM_REQUIRE_EXTENSIONS") or _flag("CIBUILDWHEEL")
if DISABLE and REQUIRE:
    sys.exit("NEXTORM_NO_EXTENSIONS and NEXTORM_REQUIRE_EXTENSIONS cannot both be set")

FALLBACK_WARNING = (
    "WARNING: nextorm: the compiled session layer could not be built ({}); installing the "
    "pure-Python twin, which works the same but is slower (nextorm.COMPILED will be False)."
)


def fall_back(exc: BaseException) -> None:
    """Re-raise when the compiled build is required; otherwise warn that the pure twin is used."""
    if REQUIRE:
        raise exc
    print(FALLBACK_WARNING.format(exc), file=sys.stderr, flush=True)


class OptionalBuildExt(build_ext):
    """Builds the extension; unless it is required, a failure leaves the pure twin."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:
            fall_back(exc)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            fall_back(exc)


def extensions() -> list:
    if DISABLE:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError as exc:
        fall_back(exc)
        return []
    from setuptools import Extension

    modules = [
        Extension(name, [os.path.join("src", *name.split(".")) + ".pyx"], optional=not REQUIRE)
        for name in COMPILED_MODULES
    ]
    # No ``freethreading_compatible``: objects and identity maps are shared between threads
    # without locks beyond the slot critical sections, which no free-threaded run has proven
    # safe, so a free-threaded interpreter re-enables the GIL when it imports the module.
    return cythonize(
        modules,
        compiler_directives={"language_level": 3, "embedsignature": True},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
