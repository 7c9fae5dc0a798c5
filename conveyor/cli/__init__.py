"""The command lines, as thin parsers over the stages and the engine: ``conveyor``
(``commands``, with the KFP client commands of ``submit``) and ``kubectl conveyor``
(``kubectl``). Each is a table of commands (``_table``), not hand-written argparse runs."""

from conveyor.cli.commands import SIM_SCENARIOS, build_parser, main

__all__ = ["SIM_SCENARIOS", "build_parser", "main"]
