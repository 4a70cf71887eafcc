"""Seconds per training step of finished runs, read from their TensorBoard logs; a table and a plot.

Each run's step time is the mean interval between the wall times at which its
`loss/total` summaries were written, from step `--from_step` on (the first steps build
the graph and warm up). Runs are given in groups (one setting, several runs); each group
gets the median of its runs and its speed-up over the first group, so that settings
timed in turn, on one machine in one sitting, compare as ratios.

  python -m laco_tf.study.step_times --run "whole batches=RUNS/a1,RUNS/a2" \\
      --run "micro-batches of 8=RUNS/b1,RUNS/b2" --out benchmarks/results/microbatches

Prints a Markdown table, writes step_times.json and step_times.png to --out.
"""

import argparse
import glob
import json
import os
import sys

import numpy as np

from laco_tf import plots, results
from laco_tf import run_dir as run_files
from laco_tf.study import heldout_table

PROGRAM = "step_times.py"


def step_seconds(run_dir: str, from_step: int) -> tuple:
  """(mean seconds per step from `from_step` on, last step) of one run's training log."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  times = {}
  paths = glob.glob(os.path.join(run_files.log_dir(run_dir, "train"), "events.out.tfevents.*"))
  for path in paths:
    for event in tf.compat.v1.train.summary_iterator(path):
      if any(v.tag == "loss/total" for v in event.summary.value):
        times[event.step] = event.wall_time
  steps = [s for s in sorted(times) if s >= from_step]
  if len(steps) < 2:
    sys.exit(f"{PROGRAM}: error: {run_dir}: fewer than 2 logged steps from step "
             f"{from_step} in {run_files.log_dir(run_dir, 'train')}")
  return float(np.mean(np.diff([times[s] for s in steps]))), steps[-1]


def plot(rows: list, path: str) -> None:
  fig, ax = plots.plt.subplots(figsize=(7, 0.6 * len(rows) + 1.4))
  for i, row in enumerate(rows):
    ax.barh(i, row["median"], color="tab:blue", alpha=0.6)
    ax.plot(row["runs"], [i] * len(row["runs"]), "k|", markersize=14)
    ax.text(row["median"], i, f"  {row['median']:.2f} s ({row['speedup']:.2f}x)",
            va="center")
  ax.set_yticks(range(len(rows)), [row["name"] for row in rows])
  ax.invert_yaxis()
  ax.set_xlabel("seconds per training step (bar: median; ticks: each run)")
  ax.set_xlim(0, 1.35 * max(max(row["runs"]) for row in rows))
  plots.save_figure(fig, path)


def group_rows(specs, from_step: int) -> list:
  """One row per --run group: each run's seconds per step, their median, the speed-up."""
  rows = []
  for name, dirs in heldout_table.parse_runs(specs, PROGRAM):
    runs = [step_seconds(d, from_step) for d in dirs]
    rows.append({"name": name, "run_names": [os.path.basename(os.path.normpath(d))
                                             for d in dirs],
                 "runs": [r[0] for r in runs],
                 "last_steps": [r[1] for r in runs],
                 "median": float(np.median([r[0] for r in runs]))})
  for row in rows:
    row["speedup"] = rows[0]["median"] / row["median"]
  return rows


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--run", action="append", required=True, help="NAME=DIR[,DIR...]")
  parser.add_argument("--from_step", type=int, default=3)
  parser.add_argument("--out", required=True, help="directory for step_times.json/.png")
  args = parser.parse_args(argv)
  rows = group_rows(args.run, args.from_step)
  print(f"| setting | runs (s/step, steps {args.from_step}-N) | median s/step | speed-up |")
  print("| --- | --- | --- | --- |")
  for row in rows:
    print(f"| {row['name']} | " + ", ".join(f"{t:.3f}" for t in row["runs"]) +
          f" | {row['median']:.3f} | {row['speedup']:.2f} |")
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, "step_times.json")
  results.write_atomically(path, json.dumps(rows, indent=1) + "\n")
  plot(rows, os.path.join(args.out, "step_times.png"))
  print(f"Wrote {path} and step_times.png", file=sys.stderr)


if __name__ == "__main__":
  main()
