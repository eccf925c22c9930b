import sys

from tools.tail.cli import main

sys.exit(main())
