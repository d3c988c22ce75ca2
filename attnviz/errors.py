"""The one exception type users see as a clean one-line message (exit status 2)."""


class AttnvizError(ValueError):
    """Bad input or bad usage: the CLI prints `attnviz: error: <message>` and exits with 2.

    Messages are one line that says what was wrong and what to do about it.
    """
