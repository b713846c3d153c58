"""User-facing errors.

A UserError is a mistake in what the user gave us (a path, a file, a setting). The CLI prints its message
as one line and exits with code 2; nothing else catches it, so library callers get a normal exception.
"""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one short line: its message's first line, or its type when it has no message."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__


class UserError(Exception):
    """Bad input: the message says what is wrong and what to do."""

    exit_code = 2

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))


class StageFailed(UserError):
    """A stage ran but its result is not acceptable (e.g. an export that does not match PyTorch): exit 1."""

    exit_code = 1
