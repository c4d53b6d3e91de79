"""Errors that reach users as one clear line (the CLI prints them without a traceback and exits non-zero)."""

from __future__ import annotations


class MocliError(Exception):
    """A problem with the user's input, files or environment, stated in one line that says what to do."""


class InputError(MocliError):
    """Unreadable, malformed or unsupported input (video, keypoints, dataset file, checkpoint)."""


class CheckpointError(MocliError):
    """A checkpoint that cannot be loaded: wrong format, newer version, or another architecture."""


class MissingDependencyError(MocliError):
    """An optional backend is not installed; the message names the install command."""
