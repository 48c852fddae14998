"""Phoneme-balanced sample selection: Algorithm 1 of the paper and better methods.

Kept light on purpose: numpy, scipy and pyarrow only, so ``select-samples``
starts fast.
"""
