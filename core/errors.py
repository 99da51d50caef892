"""Typed errors. Each says what went wrong and what to do; the CLI prints one line and exits.

Exit codes: 2 for a user mistake (bad input, missing weights, unwritable output), 1 for an internal
error, 130 for a cancelled run.
"""
from __future__ import annotations


class DoppelError(Exception):
    """Base class of every error the engine raises on purpose."""

    exit_code = 1


class UserError(DoppelError):
    """The user can fix this (input, output path, options, weights)."""

    exit_code = 2


class VideoReadError(UserError):
    """The input is missing, not a video, truncated or empty."""


class OutputPathError(UserError):
    """The output path cannot be written."""


class MissingWeightsError(UserError):
    """A model file is absent; the message names it, where to get it and where to put it."""


class WeightsFormatError(UserError):
    """A model file is present but wrong, partial or unsafe."""


class NoPersonFound(UserError):
    """Nobody was detected in the video, or nobody in enough frames to be kept."""


class TooFewFrames(UserError):
    """The clip (or the frame range asked for) is too short for a capture."""


class ConfigError(UserError):
    """An option has an invalid value."""


class Cancelled(DoppelError):
    """The run was cancelled (Ctrl+C, SIGTERM or the add-on's Cancel button)."""

    exit_code = 130
