"""The scoring engine: plain NumPy/SciPy, no Django. Arrays in, frozen dataclasses out."""
