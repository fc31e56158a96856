"""``python -m hantu_sched``: see :mod:`hantu_sched._cli` (and ``--help``)."""

from __future__ import annotations

import sys

from ._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
