"""The interpreter facts Pony's modules branch on."""

import platform
import sys

PYPY = platform.python_implementation() == "PyPy"
PY312 = sys.version_info >= (3, 12)
PY313 = sys.version_info >= (3, 13)
PY314 = sys.version_info >= (3, 14)
