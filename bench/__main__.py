"""``python -m bench`` (``make bench``): every benchmark, each against its same-run baseline;
``--write-docs`` also puts the report into ``docs/performance.md``."""

import os
import sys

from bench import decode, e2e, ingest, processor, replay, restore_churn, scale_out, scaling
from bench.broker import BOOTSTRAP_VARIABLE, kafka
from bench.docs import DOCUMENT, write_report
from bench.goals import Goal, summary
from bench.peers import compare
from bench.report import EMITTED, emit


def main() -> int:
    emit("meetings-pipeline benchmarks (ratios are the figures to compare across machines)")
    emit()
    decode.run()
    goals: list[Goal] = []
    # One broker serves every benchmark, as one cluster serves the pipeline for months: the
    # end-to-end run comes late, when the broker's JVM has compiled its hot paths (on a broker
    # started for it alone, the JIT compiler took most of a core during the measurement).
    with kafka() as bootstrap:
        given = os.environ.get(BOOTSTRAP_VARIABLE)
        os.environ[BOOTSTRAP_VARIABLE] = bootstrap
        try:
            emit()
            goals += ingest.run()
            emit()
            goals += processor.run()
            emit()
            goals += restore_churn.run()
            emit()
            goals += replay.run()
            emit()
            goals.append(compare.run().goal())
            emit()
            goals.append(scale_out.run().goal())
            emit()
            goals += e2e.run()
            emit()
            goals += scaling.run()
        finally:
            if given is None:
                del os.environ[BOOTSTRAP_VARIABLE]
    emit()
    for line in summary(goals):
        emit(line)
    if "--write-docs" in sys.argv[1:]:
        write_report(EMITTED)
        emit(f"report written to {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
