"""``python -m xdream``: the ``xdream`` command."""

import sys

from .cli import main

sys.exit(main())
