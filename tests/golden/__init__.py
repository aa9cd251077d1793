"""Golden figures: tests/golden/figures.json is the contract; make_golden.py computes it."""
