"""Allow `python -m hailoc`."""

from hailoc.cli import main

main()
