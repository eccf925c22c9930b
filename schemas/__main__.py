"""``python -m schemas``: regenerate the published JSON Schemas and AsyncAPI document."""

import sys

from schemas.contract import CONTRACT_DIR, write_contract


def main() -> int:
    written = write_contract()
    for path in written:
        sys.stdout.write(f"wrote {path}\n")
    if not written:
        sys.stdout.write(f"{CONTRACT_DIR} is up to date\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
