"""``python -m attribution.cli``: the same as the ``attribution`` command."""

from attribution.cli import main

main(prog_name="attribution")
