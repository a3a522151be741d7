"""One module per command; cli.py gathers them."""
