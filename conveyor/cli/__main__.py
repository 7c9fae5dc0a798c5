"""``python -m conveyor.cli``: the ``conveyor`` command line (what the images' entry points run)."""

import sys

from conveyor.cli.commands import main

__all__ = []


sys.exit(main())
