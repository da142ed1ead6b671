"""Pony's global options module; nextorm keeps no global options, so these only record values."""

CUT_TRACEBACK = False
