"""Other stream processors doing the processor's job, measured against it on the same input.

A peer is a baseline: the best the alternative does with its own idioms, and it must do the
whole job (one state record out per callback in, checked after every run). ``session_state`` is
the job itself, free of any framework; ``quix_job`` runs it on Quix Streams in a process of its
own and ``quix_run`` times that process; ``compare`` interleaves it with the processor
(timed as ``bench.processor`` times it) and reports the ratio (``python -m bench.peers``).
"""
