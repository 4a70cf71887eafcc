"""What a finished run need not redo when it is run again (our extension).

Scoring a split and exporting take minutes and each export adds a SavedModel version, so
a rerun of the same command redoes neither unless something that shapes its output has
changed. Each output records a fingerprint of what made it: the weights (the checkpoint
file's bytes), the options that reach a prediction (all but what to do now, where the
files go and how long to train), the corpus and the label tokens (the TFRecords'
metadata), the decision rule, the library versions and laco_tf's own source. An output
whose recorded fingerprint equals the one of this invocation is kept as it is.
"""

import dataclasses
import functools
import hashlib
import json
import os

from laco_tf import run_dir
from laco_tf.data import tfrecords

# Options that change no prediction and no export: what to do now, where files are, and
# how long to train (training changes the weights, which the fingerprint holds).
_NOT_AN_INPUT = {"do_train", "do_eval", "do_predict", "do_export", "do_predict_train",
                 "overwrite_output_dir", "allow_foreign_files", "output_dir", "export_dir",
                 "data_dir", "num_train_epochs", "max_steps", "eval_every_steps",
                 "save_checkpoints_steps", "early_stopping_patience"}
KEY = "fingerprint"


@functools.lru_cache(maxsize=1)
def _source_digest() -> str:
  """SHA-256 of laco_tf's Python source: new code scores again."""
  root = os.path.dirname(os.path.abspath(__file__))
  h = hashlib.sha256()
  for directory, subdirs, files in sorted(os.walk(root)):
    subdirs.sort()
    for name in sorted(f for f in files if f.endswith(".py")):
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        h.update(os.path.relpath(path, root).encode() + b"\0" + f.read())
  return h.hexdigest()


def weights_fingerprint(opts, checkpoint: str, metadata: dict) -> str:
  """The fingerprint of what a prediction of `checkpoint` (a checkpoint prefix) depends on,
  the decision rule aside."""
  options = {k: v for k, v in dataclasses.asdict(opts).items() if k not in _NOT_AN_INPUT}
  options.pop("provenance", None)
  data = [(os.path.basename(p), tfrecords.file_digest(p))
          for p in sorted(_checkpoint_files(checkpoint))]
  record = {"checkpoint": data, "options": options, "metadata": metadata,
            "versions": run_dir.provenance(opts)["versions"], "code": _source_digest()}
  return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def _checkpoint_files(prefix: str) -> list:
  directory, stem = os.path.split(prefix)
  return [os.path.join(directory, n) for n in os.listdir(directory)
          if n.startswith(stem + ".")]


def with_rule(fingerprint: str, decision: dict) -> str:
  """`fingerprint` with the decision rule (thresholds.describe's dict) added."""
  return hashlib.sha256((fingerprint + json.dumps(decision, sort_keys=True)).encode()
                        ).hexdigest()


def recorded(path: str):
  """The fingerprint a JSON output at `path` records (None: absent, unreadable or none)."""
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f).get(KEY)
  except (OSError, ValueError, AttributeError):
    return None


def kept_result(output_dir: str, split: str, fingerprint: str):
  """The scores of `split` when its result files hold what `fingerprint` would produce."""
  path = os.path.join(output_dir, f"eval_results_{split}.json")
  if (recorded(path) != fingerprint or
      not os.path.isfile(os.path.join(output_dir, f"predictions_{split}.jsonl"))):
    return None
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def kept_export(export_base: str, fingerprint: str):
  """The newest export version under `export_base` when `fingerprint` made it, else None."""
  from laco_tf.serving import export_versions  # pylint: disable=import-outside-toplevel
  numbered = export_versions.versions(export_base)
  if not numbered:
    return None
  newest = os.path.join(export_base, str(numbered[-1]))
  if recorded(os.path.join(newest, "assets.extra", "laco_metadata.json")) != fingerprint:
    return None
  return newest


def kept_rule(output_dir: str, fingerprint: str, labels):
  """The per-label thresholds of thresholds.json when they were tuned for `fingerprint`."""
  path = os.path.join(output_dir, "thresholds.json")
  if recorded(path) != fingerprint:
    return None
  with open(path, encoding="utf-8") as f:
    by_label = json.load(f)["thresholds"]
  return [by_label[l] for l in labels]
