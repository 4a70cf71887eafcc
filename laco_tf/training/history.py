"""history.jsonl: one JSON record per dev evaluation of a run, kept consistent on resume."""

import json
import os

from laco_tf import results

HISTORY = "history.jsonl"


def read_history(output_dir: str) -> list:
  path = os.path.join(output_dir, HISTORY)
  if not os.path.isfile(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def truncate_history(output_dir: str, step: int) -> list:
  """Drops records newer than the resumed checkpoint (they will be redone); returns the rest."""
  planted = os.path.islink(os.path.join(output_dir, HISTORY))  # no run writes a link:
  records = [] if planted else read_history(output_dir)  # replaced, never read or appended to
  kept = [r for r in records if r["step"] <= step]
  if len(kept) != len(records) or planted:
    results.write_atomically(os.path.join(output_dir, HISTORY),
                             "".join(json.dumps(r) + "\n" for r in kept))
  return kept
