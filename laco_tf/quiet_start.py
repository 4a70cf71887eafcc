"""TensorFlow's C++ start-up lines kept off the console (our extension).

Importing TensorFlow prints lines such as oneDNN's notice and, on a machine without a
GPU, an "E ... failed call to cuInit" line from the CUDA probe. They come from C++ before
any Python logging setting applies and read like failures, so the command line and the
Python API load TensorFlow and run the probe with file descriptor 2 sent to /dev/null.
Python exceptions raised meanwhile still propagate and are printed after it.
"""

import contextlib
import os
import sys


@contextlib.contextmanager
def quiet_stderr(quiet: bool = True):
  """Sends file descriptor 2 to /dev/null inside the block when `quiet`."""
  if not quiet:
    yield
    return
  sys.stderr.flush()
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)


def start_tensorflow(quiet: bool = True):
  """Imports TensorFlow and probes for GPUs, quietly the first time; returns the module.

  Already imported (by the caller, say), it is returned as is: nothing is hidden then.
  """
  first = "tensorflow" not in sys.modules
  with quiet_stderr(quiet and first):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if first:
      tf.config.list_physical_devices("GPU")  # the CUDA probe, while still quiet
  return tf
