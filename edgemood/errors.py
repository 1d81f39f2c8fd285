"""Errors that the command line turns into one clear line and an exit code."""


class EdgemoodError(Exception):
    """A failure the user can act on; printed without a traceback (exit 1)."""

    exit_code = 1


class UsageError(EdgemoodError):
    """Bad command-line usage or configuration (exit 2)."""

    exit_code = 2


class ModelError(EdgemoodError):
    """A model file or its sidecar is missing, corrupt or inconsistent."""
