"""``python -m xdream``: the ``xdream`` command."""

import sys

from xdream.cli import main

sys.exit(main())
