"""Per-invocation CLI state: the manifest path and consoles, passed via typer's context."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console

from hailoc.manifest import LoadedManifest, load_manifest


@dataclass
class CliState:
    """What every subcommand needs; the manifest is loaded on first use."""

    manifest_path: Path
    out: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))
    _manifest: LoadedManifest | None = None

    def manifest(self) -> LoadedManifest:
        """The validated manifest (loaded once per invocation)."""
        if self._manifest is None:
            self._manifest = load_manifest(self.manifest_path)
        return self._manifest


def state(ctx: typer.Context) -> CliState:
    """The CliState the root callback stored on the context."""
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState), "root callback did not run"
    return obj
