"""What a run writes at the top of its output directory, the only things it deletes, and
the guard against mixing two runs in one directory (`claim_output_dir`).

The project deletes only what it wrote: `--overwrite_output_dir` and the replacement of
an untrained run's settings remove the entries named here (and their temporary
siblings) and keep everything else. A new run refuses a directory that holds anything
else, unless --allow_foreign_files says the user wants the run beside those files.
tests/test_output_dir.py checks that a full run writes nothing outside this list.
"""

import collections
import dataclasses
import json
import os
import shlex
import shutil
import sys

import numpy as np

from laco_tf import options, results
from laco_tf.errors import InputError
from laco_tf.output_lock import LOCK_NAME as LOCK

RUN_CONFIG = "run_config.json"
SPLITS = ("train", "dev", "test")
# TensorBoard's event files: LOGS/train (training terms) and LOGS/dev (dev scores).
LOGS = "logs"


def log_dir(output_dir: str, kind: str = "") -> str:
  """OUTPUT_DIR/logs, or its `kind` ("train" or "dev") subfolder."""
  return os.path.join(output_dir, LOGS, kind) if kind else os.path.join(output_dir, LOGS)


def eval_results_name(split: str) -> str:
  return f"eval_results_{split}.json"

# Every name a run (or `laco_tf.study.analyze` with its default --output_dir) writes
# directly under OUTPUT_DIR.
WRITTEN = frozenset({
    LOCK, RUN_CONFIG, "labels.txt", "train_label_counts.json", "tfrecords", "checkpoints",
    "best", LOGS, "history.jsonl", "training_curves.png", "thresholds.json",
    "run_summary.json", "export", "analysis",
    *(eval_results_name(s) for s in SPLITS),
    *(f"predictions_{s}.jsonl" for s in SPLITS)})
# A file is written under its name plus one of these, then renamed (results.write_atomically,
# plots.save_figure): what a crash leaves behind is the run's too.
TEMPORARY_SUFFIXES = (".tmp", ".tmp.png")


def is_written(name: str) -> bool:
  """Whether `name`, an entry at the top of an output directory, is one a run writes."""
  if name in WRITTEN:
    return True
  return any(name.endswith(s) and name[:-len(s)] in WRITTEN for s in TEMPORARY_SUFFIXES)


def foreign_entries(output_dir: str) -> list:
  """The entries at the top of `output_dir` that no run writes, sorted ([] if it is absent)."""
  if not os.path.isdir(output_dir):
    return []
  return sorted(n for n in os.listdir(output_dir) if not is_written(n))


def _named(entries: list, limit: int = 5) -> str:
  shown = ", ".join(entries[:limit])
  return shown + (f" and {len(entries) - limit} more" if len(entries) > limit else "")


def check_new_run(output_dir: str, allow_foreign_files: bool) -> None:
  """Refuses, before anything is written, a directory that holds no run (no run_config.json)
  but files a run does not write, unless the user allows them (they are kept)."""
  if allow_foreign_files or os.path.lexists(os.path.join(output_dir, RUN_CONFIG)):
    return
  foreign = foreign_entries(output_dir)
  if foreign:
    raise InputError(f"--output_dir={output_dir}: holds files this project did not write "
                     f"({_named(foreign)}); choose a new or empty --output_dir, or pass "
                     "--allow_foreign_files to write beside them (they are never deleted)")


def clear(output_dir: str) -> str:
  """Deletes what a previous run wrote in `output_dir`, except the lock this run holds;
  returns a note naming the entries kept ("" when there were none)."""
  for name in sorted(os.listdir(output_dir)):
    if name == LOCK or not is_written(name):
      continue
    path = os.path.join(output_dir, name)
    if os.path.isdir(path) and not os.path.islink(path):
      shutil.rmtree(path)
    else:
      os.remove(path)  # a symbolic link goes, never what it points to
  foreign = foreign_entries(output_dir)
  return f"; keeping what this project did not write: {_named(foreign)}" if foreign else ""


# -- reading a finished run -----------------------------------------------------------------

def read_labels(output_dir: str) -> list:
  """The run's label list (labels.txt, one per line, in model order)."""
  path = os.path.join(output_dir, "labels.txt")
  try:
    with open(path, encoding="utf-8", newline="") as f:
      return [l.rstrip("\r\n") for l in f if l.strip()]
  except OSError as e:
    raise InputError(f"{path} is missing or unreadable: {e.strerror} (not a run directory?)")


def read_json(output_dir: str, name: str):
  path = os.path.join(output_dir, name)
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise InputError(f"{path}: expected the run's JSON file ({e})") from None


Predictions = collections.namedtuple("Predictions", "ids gold decisions probabilities")


def read_predictions(output_dir: str, split: str, labels: list,
                     with_probabilities: bool = True) -> Predictions:
  """A run's predictions_<split>.jsonl (`results.write_results`' lines): story ids, and
  [N, n] gold and decision arrays over `labels`, and their probabilities (None unless
  `with_probabilities`)."""
  path = os.path.join(output_dir, f"predictions_{split}.jsonl")
  expected = "'id', 'labels', 'predicted'" + (" and a probability for every label"
                                               if with_probabilities else "")
  rows = []
  try:
    with open(path, encoding="utf-8") as f:
      for number, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          row = json.loads(line)
          rows.append((str(row["id"]), [l in row["labels"] for l in labels],
                       [l in row["predicted"] for l in labels],
                       [float(row["probabilities"][l]) for l in labels]
                       if with_probabilities else None))
        except (ValueError, KeyError, TypeError) as e:
          raise InputError(f"{path}:{number}: expected a prediction line with {expected} "
                           f"({e!r})") from None
  except OSError as e:
    raise InputError(f"{path} is missing or unreadable: {e.strerror} (run with --do_predict)")
  shape = (-1, len(labels))
  return Predictions([r[0] for r in rows],
                     np.array([r[1] for r in rows], bool).reshape(shape),
                     np.array([r[2] for r in rows], bool).reshape(shape),
                     np.array([r[3] for r in rows], np.float64).reshape(shape)
                     if with_probabilities else None)

# -- the resume guard: run_config.json --------------------------------------------------------
# Options that change speed, not the model, are recorded and may change on a resume
# (options.py); so may the provenance (data directory, command line, versions).
_RECORDED_OPERATIONAL = options.RECORDED_OPERATIONAL | {"provenance"}
# The two length flags, as recorded once resolved (run_settings.resolve_lengths).
_LENGTHS = ("max_doc_tokens", "max_seq_length")


def provenance(opts) -> dict:
  """What produced the latest invocation (recorded, never compared): the data directory,
  the command line and the versions of Python and the libraries."""
  import platform  # pylint: disable=import-outside-toplevel
  from importlib import metadata  # pylint: disable=import-outside-toplevel
  import laco_tf  # pylint: disable=import-outside-toplevel
  versions = {"python": platform.python_version(), "laco_tf": laco_tf.__version__}
  for package in ("tensorflow", "tf-keras", "tensorflow-text", "safetensors"):
    try:
      versions[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      versions[package] = None
  return {"data_dir": os.path.abspath(opts.data_dir), "command": list(sys.argv),
          "versions": versions}


def _flags_to_continue(previous: dict, changed: list, identity: dict) -> str:
  """The flags that give back a recorded run's settings, or "" when flags cannot.

  A default changed since the run was recorded (say, --length_bucketing) must not leave its
  owner with --overwrite_output_dir as the only way on. What flags cannot give back (the
  corpus, the encoder, a label-description file's contents, an option the run left unset)
  offers no flags.
  """
  fields = set(options.DEFAULTS)
  keys = [k for k in changed if k not in _LENGTHS]
  if len(keys) < len(changed):
    # Both lengths are recorded resolved; a run given --max_seq_length has no text budget,
    # and a text budget implies its sequence length (passing both is refused).
    keys.append(_LENGTHS[0] if previous.get(_LENGTHS[0]) is not None else _LENGTHS[1])
  parts = []
  for key in keys:
    value = previous.get(key)
    if key in identity or key not in fields or value is None:
      return ""
    if isinstance(value, bool):
      parts.append(f"--{key}" if value else f"--no{key}")
    else:
      parts.append(shlex.quote(f"--{key}={value}"))
  return " ".join(parts)


def _read_recorded(path: str) -> dict:
  """The settings a run recorded in `path` (run_config.json), or one line saying why not."""
  try:
    with open(path, encoding="utf-8") as f:
      recorded = json.load(f)
  except (OSError, UnicodeDecodeError, ValueError) as e:
    raise InputError(f"{path}: not the settings of a run of this project ({e}); choose "
                     "another --output_dir") from None
  if not isinstance(recorded, dict):
    raise InputError(f"{path}: not the settings of a run of this project (expected a JSON "
                     "object); choose another --output_dir")
  return {**options.BEFORE_THE_OPTION, **recorded}


def claim_output_dir(opts, identity: dict) -> None:
  """Records this run's settings in OUTPUT_DIR, refusing a directory of another run, or
  one of files this project did not write (see run_dir.check_new_run).

  `identity` adds what flags cannot show (encoder vocabulary, corpus fingerprint).
  """
  check_new_run(opts.output_dir, opts.allow_foreign_files)
  settings = {k: v for k, v in dataclasses.asdict(opts).items() if k not in options.OPERATIONAL}
  settings.update(identity)
  settings["provenance"] = provenance(opts)
  path = os.path.join(opts.output_dir, RUN_CONFIG)
  if os.path.lexists(path):
    previous = _read_recorded(path)
    # A key missing on one side reads as None, the default of every option added later,
    # so runs recorded before such an option existed still resume.
    changed = [k for k in sorted((set(previous) | set(settings)) - _RECORDED_OPERATIONAL)
               if previous.get(k) != settings.get(k)]
    diff = ", ".join(f"{k}: {previous.get(k)!r} -> {settings.get(k)!r}" for k in changed)
    trained = os.path.isfile(os.path.join(opts.output_dir, "checkpoints", "checkpoint"))
    if diff and not trained and not opts.overwrite_output_dir:
      # Nothing was trained (the run failed or was stopped before its first checkpoint):
      # nothing to protect, and its corrected rerun must not be refused.
      kept = clear(opts.output_dir)
      print(f"{opts.output_dir} holds the settings of a run that saved no checkpoint "
            f"({diff}): replaced its files{kept}")
    elif diff:
      if not opts.overwrite_output_dir:
        resume = _flags_to_continue(previous, changed, identity)
        raise InputError(f"--output_dir={opts.output_dir} holds a run with different settings "
                         f"({diff}); "
                         + (f"to continue it, pass {resume}; to start anew, " if resume else "")
                         + "pass --overwrite_output_dir or another --output_dir")
      kept = clear(opts.output_dir)
      print(f"--overwrite_output_dir: deleted the previous run's files in {opts.output_dir}"
            f"{kept}")
  os.makedirs(opts.output_dir, exist_ok=True)
  results.write_atomically(path, json.dumps(settings, indent=1, sort_keys=True))
