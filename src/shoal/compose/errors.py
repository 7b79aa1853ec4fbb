"""The one error a compose file can cause: its text is what Docker's CLI prints."""


class ComposeError(Exception):
    """A compose file Docker's CLI would refuse; ``str()`` is Docker's message, word for word."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
