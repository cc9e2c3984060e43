"""Errors in what the user gave (files, settings, model names): the CLI reports them in one line, exit code 2.

Anything else is a fault of the program and keeps its traceback. Both are `ValueError`s for Python callers.
"""


class InputError(ValueError):
    """Bad input: a setting, a model name, an existing output. The message says what was expected."""
