"""The one exception type users see as a clean one-line message (exit status 2)."""


class AttnvizError(ValueError):
    """Bad input or bad usage: the CLI prints `attnviz: error: <message>` and exits with 2.

    Messages are one line that says what was wrong and what to do about it.
    """


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (a library's may run to pages), at most `limit`
    characters; the exception's type name when it says nothing."""
    lines = str(exc).strip().splitlines()
    return lines[0][:limit] if lines else type(exc).__name__
