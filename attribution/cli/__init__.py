"""The ``attribution`` command line: one module per command, shared options in
:mod:`attribution.cli.options`, library errors turned into one line in :mod:`attribution.cli.errors`.

Commands only declare options and call the library; nothing outside this package imports it.

==============  ===============================
command         module
==============  ===============================
``diagnose``    :mod:`attribution.cli.diagnose`
``eval``        :mod:`attribution.cli.eval`
``formats``     :mod:`attribution.cli.formats`
``report``      :mod:`attribution.cli.report`
``world``       :mod:`attribution.cli.world`
``select``      :mod:`attribution.cli.select`
``monitor``     :mod:`attribution.cli.monitor`
``watch``       :mod:`attribution.cli.watch`
``pairs``       :mod:`attribution.cli.pairs`
==============  ===============================
"""

from __future__ import annotations

import click

# Imported as modules, so that ``attribution.cli.report`` stays the module, not the command.
from attribution.cli import diagnose as _diagnose, eval as _eval, formats as _formats, report as _report, world as _world
from attribution.cli import monitor as _monitor, pairs as _pairs, select as _select, watch as _watch
from attribution.cli.errors import Group

__all__ = ["main"]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="attribution")
def main() -> None:
    """Find which agent, at which step, made a multi-agent LLM run fail."""


for _command in (_diagnose.diagnose, _report.report, _eval.eval_command, _formats.formats, _world.world, _select.select, _monitor.monitor,
                 _watch.watch, _pairs.pairs):
    main.add_command(_command)
