"""The training command: `run_classifier.py` and the installed `laco-tf-train`.

  python run_classifier.py --task=clcp --data_dir=data/sample --output_dir=OUT

Its flags are the options of `laco_tf/options.py`. With none of --do_train/--do_eval/
--do_predict/--do_export, it does all four. TensorFlow loads only once the flags parse and
the paths check out (`preflight.py`).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TF C++ lines off (export 0..2 for them)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags as absl_flags
from absl import logging

from laco_tf import cli, options, preflight, quiet_start
from laco_tf.errors import InputError, PreemptedError

FLAGS = absl_flags.FLAGS
options.define_flags(FLAGS, __name__)
for _name, _alias in options.ALIASES.items():  # Google BERT's name for the eval batch
  absl_flags.DEFINE_alias(_alias, _name, module_name=__name__)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # TF's INFO lines would bury the progress bar.
  try:  # before TensorFlow loads: a mistyped path is answered at once
    preflight.check_paths(FLAGS.data_dir, FLAGS.output_dir)
  except InputError as e:
    cli.fail(e)
  # TensorFlow loads only once flags parse; its C++ start-up lines go to /dev/null unless
  # --verbosity is given.
  quiet_start.start_tensorflow(quiet=not FLAGS["verbosity"].present)
  from laco_tf import run_settings, runner  # pylint: disable=import-outside-toplevel
  try:
    runner.run(run_settings.RunOptions.from_flags(FLAGS))
  except InputError as e:
    cli.fail(e)
  except PreemptedError as e:
    kind = "preempted" if e.exit_code == PreemptedError.EXIT_CODE else "interrupted"
    print(f"{cli.program()}: {kind}: {e}", file=sys.stderr)
    sys.exit(e.exit_code)
  except KeyboardInterrupt:
    # Only before the run installs its handlers (training/preemption.py): nothing written.
    print(f"{cli.program()}: interrupted: stopped by SIGINT before the run began",
          file=sys.stderr)
    sys.exit(130)
  except Exception as e:  # pylint: disable=broad-except
    # A full disk met by a writer that does not map it itself (TensorFlow's event files,
    # the SavedModel export): one line too.
    from laco_tf import disk  # pylint: disable=import-outside-toplevel
    if not disk.is_no_space(e):
      raise
    where = disk.path_of(e) or FLAGS.output_dir
    cli.fail(disk.disk_full(where, cleaned=False))


def console() -> None:
  """Entry point of the installed `laco-tf-train` command."""
  cli.run(main, cli.installed_name(), [__name__])


def run_as(name: str) -> None:
  """Runs the command under `name` (run_classifier.py runs it as itself)."""
  cli.run(main, name, [__name__])
