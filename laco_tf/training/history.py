"""history.jsonl: one JSON record per dev evaluation of a run, kept consistent on resume."""

import json
import os

HISTORY = "history.jsonl"


def read_history(output_dir: str) -> list:
  path = os.path.join(output_dir, HISTORY)
  if not os.path.isfile(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def truncate_history(output_dir: str, step: int) -> list:
  """Drops records newer than the resumed checkpoint (they will be redone); returns the rest."""
  records = read_history(output_dir)
  kept = [r for r in records if r["step"] <= step]
  if len(kept) != len(records):
    path = os.path.join(output_dir, HISTORY)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
      f.writelines(json.dumps(r) + "\n" for r in kept)
    os.replace(path + ".tmp", path)
  return kept
