"""The one exception type for bad user input.

`run_classifier.py` prints an `InputError` as a single line and exits non-zero, so
every message must name the file, line or flag at fault and what was expected.
"""


class InputError(ValueError):
  """User input (a file, a line in it, or a flag) is not what LACO-TF expects."""


class NonFiniteError(InputError):
  """Training or prediction produced NaN or infinity (usually a too-high learning rate)."""
