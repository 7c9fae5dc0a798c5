"""Commands as data: each command line is a table of ``Command`` rows that ``build`` turns
into argparse, so adding a command or a flag is a row, not another hand-written run of
``add_parser`` / ``add_argument`` calls."""

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Arg", "Command", "Exclusive", "arg", "build"]


@dataclass(frozen=True)
class Arg:
    """One ``add_argument`` call: its names and keyword arguments."""

    names: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*names: str, **options: Any) -> Arg:
    return Arg(names, options)


@dataclass(frozen=True)
class Exclusive:
    """A mutually exclusive group of arguments."""

    args: tuple[Arg, ...]
    required: bool = False


@dataclass(frozen=True)
class Command:
    """A subcommand: its arguments, what runs it, and its own subcommands (``models list``)."""

    name: str
    help: str
    run: Callable[..., int] | None = None
    args: Sequence[Arg | Exclusive] = ()
    description: str | None = None
    subcommands: Sequence["Command"] = ()
    metavar: str = "ACTION"  # of the subcommands
    dest: str = ""  # where the chosen subcommand's name goes
    epilog: str | None = None
    raw: bool = False  # keep the description's and epilog's own line breaks
    aliases: Sequence[str] = ()  # other spellings that run it (``analyse`` for ``analyze``)


def _add(parser: argparse.ArgumentParser, items: Sequence[Arg | Exclusive]) -> None:
    for item in items:
        if isinstance(item, Exclusive):
            group = parser.add_mutually_exclusive_group(required=item.required)
            for a in item.args:
                group.add_argument(*a.names, **a.options)
        else:
            parser.add_argument(*item.names, **item.options)


def _subcommands(
    parser: argparse.ArgumentParser, commands: Sequence[Command], dest: str, metavar: str
) -> None:
    sub = parser.add_subparsers(dest=dest, required=True, metavar=metavar)
    for c in commands:
        p = sub.add_parser(
            c.name,
            aliases=list(c.aliases),
            help=c.help,
            description=c.description,
            epilog=c.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter
            if c.raw
            else argparse.HelpFormatter,
        )
        _add(p, c.args)
        if c.subcommands:
            _subcommands(p, c.subcommands, c.dest or f"{c.name}_command", c.metavar)
        if c.run is not None:
            p.set_defaults(func=c.run)


def build(
    prog: str,
    description: str,
    commands: Sequence[Command],
    *,
    top: Sequence[Arg | Exclusive] = (),
    metavar: str = "COMMAND",
    dest: str = "command",
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """The parser of a command line; the chosen command's ``run`` is ``args.func``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter,
    )
    _add(parser, top)
    _subcommands(parser, commands, dest, metavar)
    return parser
