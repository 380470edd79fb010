"""Exceptions that carry a message meant for a person.

The CLI turns a :class:`TelcoNboError` into a red message and a non-zero exit; the API turns it
into a 4xx. Anything else escaping is a bug.
"""

from __future__ import annotations


class TelcoNboError(Exception):
    """Base class for errors caused by the user's input or environment, not by a bug."""


class DataValidationError(TelcoNboError, ValueError):
    """A table broke its contract (column, type, id, reference or date order).

    Attributes:
        table: The table that broke the contract.
        problems: One line per problem, each naming column and example rows.
    """

    def __init__(self, table: str, problems: list[str]):
        self.table = table
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"table '{table}' is invalid:\n{lines}")


class ConfigError(TelcoNboError, ValueError):
    """A configuration value or file is missing or malformed."""
