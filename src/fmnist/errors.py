"""User-facing errors: the CLI prints their message (no traceback) and exits non-zero."""


class FmnistError(Exception):
    """A problem the user can fix: the message says what was wrong and what to do."""


class DataError(FmnistError):
    """A dataset file is missing, corrupt, or has the wrong shape or checksum."""


class ConfigError(FmnistError, ValueError):
    """A parameter or option the model, the split or the command cannot take.

    Also a `ValueError`, so scikit-learn tooling (grid searches, `check_estimator`) treats it as
    the invalid-parameter error it expects; raised before anything is written to disk.
    """
