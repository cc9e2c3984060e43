"""Errors in what the user gave (files, settings, model names): the CLI reports them in one line, exit code 2.

Anything else is a fault of the program and keeps its traceback. Both are `ValueError`s for Python callers.
"""


class InputError(ValueError):
    """Bad input: a setting, a model name, an existing output. The message says what was expected."""


def yaml_error(path, error) -> InputError:
    """The one line for a YAML file that does not parse (`yaml.YAMLError`): the file, the line, what is wrong."""
    mark = getattr(error, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
    return InputError(f"{where}: not valid YAML ({getattr(error, 'problem', None) or error})")
