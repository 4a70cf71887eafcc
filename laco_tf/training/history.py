"""history.jsonl: one JSON record per dev evaluation of a run, kept consistent on resume
(as are the TensorBoard event files, `truncate_event_logs`)."""

import glob
import json
import os

import tensorflow as tf
from tensorflow.core.util import event_pb2

from laco_tf import disk, results
from laco_tf.errors import InputError

HISTORY = "history.jsonl"


def _parse(path: str) -> tuple:
  """(the records of `path`, whether its last line was cut short and dropped).

  Each record is appended with one write; a run killed during it leaves a last line
  without its newline, which is dropped (that evaluation's scores stay in the TensorBoard
  logs). Any other line that is not a record is an InputError naming it.
  """
  with open(path, encoding="utf-8", errors="replace") as f:
    lines = f.read().split("\n")
  # split() leaves "" after the final newline; anything else there was cut short.
  partial = lines.pop()
  records = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      record = json.loads(line)
    except ValueError:
      record = None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
      raise InputError(f"{path}:{number}: not a record of a dev evaluation (corrupt); "
                       f"restore the file, or delete it to keep only the TensorBoard logs "
                       "of the earlier evaluations")
    records.append(record)
  return records, bool(partial.strip())


def read_history(output_dir: str) -> list:
  path = os.path.join(output_dir, HISTORY)
  if not os.path.isfile(path):
    return []
  records, cut = _parse(path)
  if cut:
    print(f"{path}: ignoring its last line, cut short by a run stopped while writing it")
  return records


def truncate_history(output_dir: str, step: int) -> list:
  """Drops records newer than the resumed checkpoint (they will be redone), and a last
  line cut short; returns the rest."""
  path = os.path.join(output_dir, HISTORY)
  planted = os.path.islink(path)  # no run writes a link: replaced, never read or appended to
  if not planted and not os.path.isfile(path):
    return []
  records, cut = ([], False) if planted else _parse(path)
  kept = [r for r in records if r["step"] <= step]
  if cut:
    print(f"{path}: dropped its last line, cut short by a run stopped while writing it "
          "(the TensorBoard logs keep that evaluation's scores)")
  if cut or planted or len(kept) != len(records):
    results.write_atomically(path, "".join(json.dumps(r) + "\n" for r in kept))
  return kept


def truncate_event_logs(log_dir: str, step: int) -> None:
  """Drops the TensorBoard events of steps after the resumed checkpoint's from the event
  files in `log_dir`'s subfolders (train/, dev/), and a last record cut short: the resumed
  run logs those steps again, and TensorBoard would draw both."""
  for path in sorted(glob.glob(os.path.join(log_dir, "*", "events.out.tfevents.*"))):
    kept, dropped = [], False
    try:
      for record in tf.data.TFRecordDataset(path):
        if event_pb2.Event.FromString(record.numpy()).step > step:
          dropped = True
        else:
          kept.append(record.numpy())
    except tf.errors.OpError:  # a record cut short (or damaged) by a stopped run
      dropped = True
    if dropped:
      with disk.replacing(path) as tmp:
        results.open_new(tmp, "wb").close()  # TF's writer would follow a link planted there
        with tf.io.TFRecordWriter(tmp) as writer:
          for record in kept:
            writer.write(record)
