"""rich progress bars behind the library's progress callbacks (calibration, auto search)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text


class _FacesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        faces = task.fields.get("faces", 0)
        elapsed = task.elapsed or 0.0
        rate = faces / elapsed if elapsed > 0 else 0.0
        return Text(f"{faces} faces, {rate:.1f} faces/s", style="cyan")


def images_progress(console: Console) -> Progress:
    """Images done of all, with faces found and faces per second."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        _FacesPerSecond(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def steps_progress(console: Console) -> Progress:
    """Steps done of all under a changing description (the auto search's phases)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("evaluations"),
        TimeElapsedColumn(),
        console=console,
    )


class ImagesBar:
    """The calibration builder's progress (images started, faces per image) as a bar."""

    def __init__(self, progress: Progress, label: str) -> None:
        self.progress = progress
        self.task = progress.add_task(label, total=None, faces=0)
        self.workers = 1

    def start(self, images: int, workers: int) -> None:
        """The number of images, and of the processes working on them, is known."""
        self.workers = workers
        self.progress.update(self.task, total=images)

    def advance(self, faces: int) -> None:
        """One image done with `faces` faces."""
        current = self.progress.tasks[self.task].fields.get("faces", 0)
        self.progress.update(self.task, advance=1, faces=current + faces)


class StepsBar:
    """The auto search's progress (a phase of N steps at a time) as a bar."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("auto", total=None)

    def start(self, total: int, what: str) -> None:
        """A phase of `total` steps starts."""
        self.progress.update(self.task, total=total, completed=0, description=what)

    def advance(self) -> None:
        """One step done. The total is what the phase expects: a search whose glance misjudged
        a plan takes more steps, and the bar grows rather than overflowing."""
        task = self.progress.tasks[self.task]
        if task.total is not None and task.completed >= task.total:
            self.progress.update(self.task, total=task.completed + 1)
        self.progress.advance(self.task)

    def finish(self) -> None:
        """The phase ended (possibly early)."""
        task = self.progress.tasks[self.task]
        self.progress.update(self.task, total=task.completed)
