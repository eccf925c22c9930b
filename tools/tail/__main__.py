"""``python -m tools.tail``: the same as ``meetings-tail``."""

import sys

from tools.tail.cli import main

sys.exit(main())
