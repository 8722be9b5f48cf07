"""The error every ``vmxu`` command raises for its user: printed as ``vmxu <command>: message``, exit status 2.

Its own module so that commands kept in their own files (vmxu/wave_command.py) raise the class
``vmxu.cli.main`` catches, also when the CLI runs as ``python -m vmxu.cli``.
"""

__all__ = ["CommandError"]


class CommandError(Exception):
    """A clear error for the user: printed as ``vmxu <command>: message``, exit status 2."""
