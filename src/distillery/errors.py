"""The few errors distillery raises on purpose.

Each is turned into a one-paragraph message and exit code 2 at the CLI boundary
(bad input the user can fix); anything else is an internal failure (exit 1).
"""


class DistilleryError(Exception):
    """Bad input the user can fix: the message names the file, the field and the fix."""


class RecipeError(DistilleryError):
    """The Recipe YAML (or a file it points to) is invalid."""


class CatalogError(DistilleryError):
    """A tool catalog cannot be read or does not describe functions."""


class TeacherError(DistilleryError):
    """A teacher cannot be reached or configured (missing key, bad URL...)."""


class SpiritError(DistilleryError):
    """A Spirit file is missing, not a Spirit, or damaged."""


class StudentError(DistilleryError):
    """A student's base model cannot be found or loaded."""
