"""`make fuzz`: property-based tests that throw bad input at real running components.

FUZZ_EXAMPLES (default 25) sets hypothesis's max_examples; each example carries a batch of inputs.
FUZZ_REPORT names a file to which each module appends how many inputs it sent, and the session
its total and its crash count (failed tests); `make fuzz` exits non-zero on any crash.
"""
