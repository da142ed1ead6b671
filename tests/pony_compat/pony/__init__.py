"""``pony`` mapped onto nextorm, so Pony applications and Pony's own test suite run against nextorm.

Only names nextorm implements are provided: a name Pony has and nextorm lacks is left out, so
code using it fails with a clear NameError or ImportError instead of a silent stand-in.
"""

from pony import options  # noqa: F401 - ``import pony`` gives ``pony.options`` as in Pony

#: the version of Pony's API that nextorm maps (code checking ``pony.__version__`` takes the 0.7
#: branches: schema names as 0.7 spells them)
__version__ = "0.7.20"
