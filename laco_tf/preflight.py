"""Checks of a run's command line that need no TensorFlow (our extension).

`run_classifier.py` runs `check_paths` before TensorFlow loads (some 15 s on a small
machine), so a mistyped path is answered at once; `run_settings.validate` runs
`check_required` for the Python API, and the corpus reader checks --data_dir there.
"""

import os

from laco_tf.errors import InputError


def check_required(data_dir, output_dir) -> None:
  """--data_dir and --output_dir are given."""
  if not data_dir:
    raise InputError("--data_dir is required: the directory holding the corpus")
  if not output_dir:
    raise InputError("--output_dir is required: where the run's files go")


def check_data_dir(data_dir) -> None:
  """--data_dir is given and is a directory (the corpus readers ask this too)."""
  if not data_dir:
    raise InputError("--data_dir is required: the directory holding the corpus")
  if not os.path.isdir(data_dir):
    raise InputError(f"--data_dir={data_dir}: no such directory")


def check_paths(data_dir, output_dir) -> None:
  """`check_required`, and --data_dir is a directory."""
  check_required(data_dir, output_dir)
  check_data_dir(data_dir)
