"""Vectorized building blocks of the transformers' vector forms: the keyed PRF over Arrow arrays (prf.py,
with its numba-compiled SHA-256 in sha256.py). No Python call per value anywhere in this package."""
