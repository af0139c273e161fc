"""Errors the user can act on: the CLI prints them as one line, without a traceback."""


class MmsdError(Exception):
    """Bad input or a failed step that the user can fix (a path, a file, an option)."""


class MmsdWarning(UserWarning):
    """Something the user should know that does not stop the work; the CLI prints it as one line."""
