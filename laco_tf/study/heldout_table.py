"""The held-out table: dev and held-out scores of finished runs, mean and spread over seeds.

  python -m laco_tf.study.heldout_table \\
      --run "BR-SVM=RUNS/heldout/br,RUNS/heldout/br_s1,RUNS/heldout/br_s2" \\
      --run "LACO+clcp=RUNS/heldout/clcp_s0,RUNS/heldout/clcp_s1" \\
      [--rules=fixed,fixed+alo,global,per_label] [--keep=benchmarks/results/heldout/heldout.json] \\
      [--out=benchmarks/results/heldout]

Each --run is NAME=DIR[,DIR...], one directory per seed, each trained with
`--test_fraction` so that its `eval_results_test.json` scores the held-out stories. A
directory holding `rule_fixed/`, `rule_global/`, `rule_per_label/` (copies of the result
files after re-evaluating with each `--threshold_strategy`) gives one row per rule;
otherwise its own result files give one row. With --rules, each named decision rule is
applied to the run's own predictions_{dev,test}.jsonl instead (thresholds tuned on dev
probabilities by laco_tf's `thresholds.tune`, judged on held-out ones; `+alo` adds the
at-least-one-label rule): one row per rule with no re-evaluation. --keep carries the rows
of an earlier heldout.json whose run directories are gone (a fresh checkout) into the new
table; rows computed now replace kept rows of the same model and rule. Prints a Markdown
table, writes heldout.json and heldout.png (held-out micro- and macro-F1 with their seed
spread) to --out.
"""

import argparse
import functools
import json
import os
import statistics
import sys

import numpy as np

from laco_tf import run_dir  # (no TensorFlow)
from laco_tf.errors import InputError
from laco_tf.training import metrics, thresholds

RULES = ("fixed", "global", "per_label")
METRICS = (("dev", "micro_f1"), ("dev", "macro_f1"), ("test", "micro_f1"), ("test", "macro_f1"))


def _scores(directory: str) -> dict:
  out = {}
  for split in ("dev", "test"):
    path = os.path.join(directory, f"eval_results_{split}.json")
    if not os.path.isfile(path):
      sys.exit(f"heldout_table.py: error: {path} is missing (is the run finished?)")
    with open(path, encoding="utf-8") as f:
      result = json.load(f)
    out[split] = {k: result[k] for k in ("micro_f1", "macro_f1")}
  return out


def rows_of(name: str, directories: list) -> list:
  """One row per decision rule found in every seed's directory."""
  rules = [r for r in RULES
           if all(os.path.isdir(os.path.join(d, f"rule_{r}")) for d in directories)]
  rows = []
  for rule in rules or [None]:
    seeds = [_scores(os.path.join(d, f"rule_{rule}") if rule else d) for d in directories]
    row = {"model": name, "rule": rule or _recorded_rule(directories), "seeds": len(seeds)}
    for split, metric in METRICS:
      values = [100 * s[split][metric] for s in seeds]
      row[f"{split}_{metric}"] = values
    rows.append(row)
  return rows


def _predictions(directory: str, split: str, labels: list):
  """(gold, probs) [N, n] arrays of a run's predictions_<split>.jsonl, over its labels."""
  try:
    found = run_dir.read_predictions(directory, split, labels)
  except InputError as e:
    sys.exit(f"heldout_table.py: error: {e}")
  return found.gold, found.probabilities


@functools.lru_cache(maxsize=None)
def _saved_run(directory: str):
  """(base threshold, dev (gold, probs), test (gold, probs)) of a run, read once."""
  with open(os.path.join(directory, "labels.txt"), encoding="utf-8") as f:
    labels = [l.rstrip("\n") for l in f if l.strip()]
  base = 0.5
  path = os.path.join(directory, "thresholds.json")
  if os.path.isfile(path):   # the run's own --threshold is the fixed rule and the tie-break
    with open(path, encoding="utf-8") as f:
      base = float(np.median(list(json.load(f)["thresholds"].values())))
  return base, _predictions(directory, "dev", labels), _predictions(directory, "test", labels)


def rule_scores(directory: str, rule: str) -> dict:
  """Dev and held-out micro/macro-F1 of `rule` ("fixed", "global", "per_label", each with an
  optional "+alo") applied to the run's saved probabilities; thresholds tuned on dev."""
  strategy, _, suffix = rule.partition("+")
  if strategy not in RULES or suffix not in ("", "alo"):
    sys.exit(f"heldout_table.py: error: --rules: {rule!r} is not one of {RULES}, each "
             "optionally followed by +alo")
  at_least_one = suffix == "alo"
  base, dev, test = _saved_run(directory)
  chosen = thresholds.tune(*dev, strategy, base, at_least_one)
  out = {}
  for split, (gold, probs) in (("dev", dev), ("test", test)):
    result = metrics.multilabel_metrics(gold, thresholds.decide(probs, chosen, at_least_one))
    out[split] = {k: result[k] for k in ("micro_f1", "macro_f1")}
  return out


def rule_rows(name: str, directories: list, rules: list) -> list:
  """One row per --rules entry, from each seed's saved probabilities."""
  rows = []
  for rule in rules:
    seeds = [rule_scores(d, rule) for d in directories]
    row = {"model": name, "rule": rule.replace("+alo", ", at least one"), "seeds": len(seeds)}
    for split, metric in METRICS:
      row[f"{split}_{metric}"] = [100 * s[split][metric] for s in seeds]
    rows.append(row)
  return rows


def merge_kept(kept: list, rows: list) -> list:
  """The kept rows (in their order) with those recomputed now replaced, then the new ones."""
  new = {(r["model"], r["rule"]): r for r in rows}
  merged = [new.pop((r["model"], r["rule"]), r) for r in kept]
  return merged + [r for r in rows if (r["model"], r["rule"]) in new]


def _recorded_rule(directories: list) -> str:
  """The decision rule the runs' own thresholds.json names when all agree; else "as run"
  (the linear baselines write none)."""
  found = set()
  for d in directories:
    path = os.path.join(d, "thresholds.json")
    if not os.path.isfile(path):
      return "as run"
    with open(path, encoding="utf-8") as f:
      found.add(json.load(f)["strategy"])
  return found.pop() if len(found) == 1 else "as run"


def _cell(values: list) -> str:
  if len(values) == 1:
    return f"{values[0]:.2f}"
  return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def markdown(rows: list) -> str:
  lines = ["| model | decision rule | seeds | dev micro-F1 | dev macro-F1 | held-out micro-F1 "
           "| held-out macro-F1 |", "| --- | --- | --- | --- | --- | --- | --- |"]
  for r in rows:
    lines.append(f"| {r['model']} | {r['rule']} | {r['seeds']} | " + " | ".join(
        _cell(r[f"{s}_{m}"]) for s, m in METRICS) + " |")
  return "\n".join(lines)


def plot(rows: list, path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, axes = plt.subplots(1, 2, figsize=(11, 0.45 * len(rows) + 1.6), sharey=True)
  labels = [f"{r['model']} ({r['rule']}, {r['seeds']} seed{'s' if r['seeds'] > 1 else ''})"
            for r in rows]
  for ax, metric in zip(axes, ("micro_f1", "macro_f1")):
    values = [r[f"test_{metric}"] for r in rows]
    means = [statistics.mean(v) for v in values]
    spread = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
    ax.barh(range(len(rows)), means, xerr=spread, color="tab:blue", alpha=0.8)
    for i, v in enumerate(values):
      ax.plot(v, [i] * len(v), "k.", ms=4)
    ax.set_xlim(min(min(v) for v in values) - 5, max(max(v) for v in values) + 2)
    ax.set_title(f"held-out {metric.replace('_', '-')} (%)")
    ax.grid(axis="x", alpha=0.3)
  axes[0].set_yticks(range(len(rows)), labels)
  axes[0].invert_yaxis()
  fig.tight_layout()
  fig.savefig(path + ".tmp.png", dpi=110)
  plt.close(fig)
  os.replace(path + ".tmp.png", path)


def parse_runs(specs, program: str) -> list:
  """[(name, [dir, ...])] of --run NAME=DIR[,DIR...] values; exits on a malformed one."""
  runs = []
  for spec in specs:
    name, sep, dirs = spec.partition("=")
    if not sep or not dirs:
      sys.exit(f"{program}: error: --run={spec}: expected NAME=DIR[,DIR...]")
    runs.append((name, dirs.split(",")))
  return runs


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--run", action="append", required=True, help="NAME=DIR[,DIR...]")
  parser.add_argument("--rules", default="",
                      help="comma-separated decision rules scored from the saved probabilities "
                      "(fixed, global, per_label, each optionally +alo); default: the result "
                      "files as written")
  parser.add_argument("--keep", default=None,
                      help="an earlier heldout.json whose rows stay in the table")
  parser.add_argument("--out", default=os.path.join("benchmarks", "results", "heldout"),
                      help="relative to the current directory")
  args = parser.parse_args()
  rows = []
  rules = [r for r in args.rules.split(",") if r]
  for name, dirs in parse_runs(args.run, "heldout_table.py"):
    rows += rule_rows(name, dirs, rules) if rules else rows_of(name, dirs)
  if args.keep:
    try:
      with open(args.keep, encoding="utf-8") as f:
        kept = json.load(f)
    except (OSError, ValueError) as e:
      sys.exit(f"heldout_table.py: error: --keep={args.keep}: expected a heldout.json ({e})")
    rows = merge_kept(kept, rows)
  print(markdown(rows))
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, "heldout.json")
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(rows, f, indent=1)
  os.replace(path + ".tmp", path)
  plot(rows, os.path.join(args.out, "heldout.png"))
  print(f"Wrote {path} and heldout.png", file=sys.stderr)  # stdout: the table alone


if __name__ == "__main__":
  main()
