"""Errors a user can fix, rendered as one line without a traceback."""

from __future__ import annotations


class HailocError(Exception):
    """An input or environment problem with a location and a fix."""

    exit_code = 2

    def __init__(self, message: str, *, where: str | None = None, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.fix = fix

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.fix:
            text = f"{text.rstrip('.')}. Fix: {self.fix}"
        return text


class ManifestError(HailocError):
    """models.yaml is malformed or names something that does not exist."""


class OnnxError(HailocError):
    """An ONNX file cannot be read or does not match its manifest entry."""


class PlanError(HailocError):
    """A precision plan cannot be built or resolved against a parsed network."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGINT) delivered as an exception, so every `finally` and record runs."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as shells report it (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum
