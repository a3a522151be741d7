"""plansync: declarative sync of 2C2P recurring payment plans."""

# The installed version (pyproject.toml's, which tests/test_startup.py holds this to), as a
# constant: asking importlib.metadata costs every run ~15 ms of imports and a file search.
__version__ = "0.1.0"
