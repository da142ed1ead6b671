"""``pony.orm``: Pony's public ORM names, as nextorm provides them."""

from pony.orm.core import *  # noqa: F403
from pony.orm.core import __all__  # noqa: F401
