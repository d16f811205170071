"""User-facing errors: the CLI prints their message (no traceback) and exits non-zero."""


class FmnistError(Exception):
    """A problem the user can fix: the message says what was wrong and what to do."""


class DataError(FmnistError):
    """A dataset file is missing, corrupt, or has the wrong shape or checksum."""
