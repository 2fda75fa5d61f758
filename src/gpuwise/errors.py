"""The one error type a user can fix: the CLI prints it without a traceback and exits 2."""


class UserError(ValueError):
    """Bad input (a file, a field, a name, an endpoint); the message says what to do."""
