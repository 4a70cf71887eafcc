#!/usr/bin/env python3
"""The held-out table: dev and held-out scores of finished runs, mean and spread over seeds.

  python benchmarks/heldout_table.py \\
      --run "BR-SVM=RUNS/heldout/br,RUNS/heldout/br_s1,RUNS/heldout/br_s2" \\
      --run "LACO+clcp=RUNS/heldout/clcp_s0,RUNS/heldout/clcp_s1" \\
      [--out=benchmarks/results/heldout]

Each --run is NAME=DIR[,DIR...], one directory per seed, each trained with
`--test_fraction` so that its `eval_results_test.json` scores the held-out stories. A
directory holding `rule_fixed/`, `rule_global/`, `rule_per_label/` (copies of the result
files after re-evaluating with each `--threshold_strategy`) gives one row per rule;
otherwise its own result files give one row. Prints a Markdown table, writes
heldout.json and heldout.png (held-out micro- and macro-F1 with their seed spread) to --out.
"""

import argparse
import json
import os
import statistics
import sys

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
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                    "heldout"))
  args = parser.parse_args()
  rows = []
  for name, dirs in parse_runs(args.run, "heldout_table.py"):
    rows += rows_of(name, dirs)
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
