"""`python -m scalelab.cli`: the same as the `scalelab` command."""

from scalelab.cli.main import app

app()
