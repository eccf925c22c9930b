"""``python -m ingest``: the ingest service entry point."""

import sys


def main() -> int:
    sys.stderr.write("ingest: not implemented yet\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
