"""The one exception type for bad user input.

`run_classifier.py` prints an `InputError` as a single line and exits non-zero, so
every message must name the file, line or flag at fault and what was expected.
"""


class InputError(ValueError):
  """User input (a file, a line in it, or a flag) is not what LACO-TF expects."""


class NonFiniteError(InputError):
  """Training or prediction produced NaN or infinity (usually a too-high learning rate)."""


class PreemptedError(Exception):
  """Training stopped on SIGTERM after saving a checkpoint at the current step.

  `run_classifier.py` prints it as one line and exits with `EXIT_CODE`: 42, the code TF's
  `PreemptionCheckpointHandler` exits with by default, so restart loops written for it
  (rerun while the exit status is 42) work unchanged.
  """
  EXIT_CODE = 42


class DiskFullError(InputError):
  """A write failed for want of space (ENOSPC, or TensorFlow's "No space left on device").

  The writer has removed what it had half written; the message names the directory, its
  free space and, when known, the space the write needed.
  """
