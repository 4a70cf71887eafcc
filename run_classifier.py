#!/usr/bin/env python3
"""Trains, evaluates and exports a LACO multi-label text classifier.

  python run_classifier.py --task=clcp --data_dir=data/sample --output_dir=OUT

With none of --do_train/--do_eval/--do_predict/--do_export, does all four. See README.md
and `python run_classifier.py --helpfull`.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Keep TF's C++ start-up chatter out.

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags as absl_flags
from absl import logging

import flags  # noqa: F401  (defines the flags)  pylint: disable=unused-import
from laco_tf.errors import InputError

FLAGS = absl_flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # TF's INFO lines would bury the progress bar.
  from laco_tf import run_settings, runner  # TensorFlow loads only once flags parse.
  try:
    runner.run(run_settings.RunOptions.from_flags(FLAGS))
  except InputError as e:
    sys.exit(f"run_classifier.py: error: {e}")


if __name__ == "__main__":
  app.run(main)
