"""The one exception type for bad user input, and the run's stop on a signal.

`run_classifier.py` prints an `InputError` as a single line and exits non-zero, so
every message must name the file, line or flag at fault and what was expected.
"""

import signal


class InputError(ValueError):
  """User input (a file, a line in it, or a flag) is not what LACO-TF expects."""


class NonFiniteError(InputError):
  """Training or prediction produced NaN or infinity (usually a too-high learning rate)."""


class PreemptedError(Exception):
  """The run stopped on SIGTERM or SIGINT after saving what it had finished
  (`training/preemption.py`).

  `run_classifier.py` prints it as one line and exits with `exit_code`: for SIGTERM
  `EXIT_CODE`, 42, the code TF's `PreemptionCheckpointHandler` exits with by default, so
  restart loops written for it (rerun while the exit status is 42) work unchanged; for
  SIGINT 130, the shell's code for an interrupted command.
  """
  EXIT_CODE = 42

  def __init__(self, message: str, signum: int = signal.SIGTERM):
    super().__init__(message)
    self.signum = signum
    self.exit_code = self.EXIT_CODE if signum == signal.SIGTERM else 128 + int(signum)


class DiskFullError(InputError):
  """A write failed for want of space (ENOSPC, or TensorFlow's "No space left on device").

  The writer has removed what it had half written; the message names the directory, its
  free space and, when known, the space the write needed.
  """
