"""Reference pickles written by a real numpy 1.26.4 (see make_reference_pickles.py)."""
