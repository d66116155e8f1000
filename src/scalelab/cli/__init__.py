"""The `scalelab` command line."""

from scalelab.run import early

early.install()
