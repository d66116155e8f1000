"""scalelab: controlled, reproducible performance-and-energy experiments."""

__version__ = "0.1.0"
