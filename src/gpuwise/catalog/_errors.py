"""The catalog's one exception type, kept apart so the parser and the public API share it."""

from __future__ import annotations

from gpuwise.errors import UserError


class CatalogError(UserError):
    """A catalog lookup or catalog file failed; the message always says what to do about it.

    A UserError (a ValueError) so that callers validating user input (the spec, the CLI) can
    treat an unknown GPU name like any other bad value.
    """
