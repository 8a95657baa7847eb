"""The CLI's progress bars stay truthful when the work outgrows its estimate."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from hailoc.cli.progress_bars import StepsBar


def test_the_search_bar_grows_when_the_search_takes_more_steps_than_expected() -> None:
    """The auto search expects one round of bisection; a glance that misjudged a plan adds
    steps: the bar's total follows instead of showing more done than planned."""
    progress = Progress(console=Console(file=io.StringIO()))
    bar = StepsBar(progress)
    bar.start(3, "search")
    for _ in range(5):
        bar.advance()
    task = progress.tasks[bar.task]
    assert task.completed == 5 and task.total == 5
    bar.start(4, "again")
    bar.advance()
    bar.finish()
    task = progress.tasks[bar.task]
    assert task.completed == 1 and task.total == 1
