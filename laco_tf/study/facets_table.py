"""The many-label table: decisions and rankings of finished runs, whole, per facet and per
frequency group, mean and spread over seeds.

  python -m laco_tf.study.facets_table \\
      --run "BR-SVM=RUNS/facets/svm" \\
      --run "LACO+clcp, 64 slots, shortlist=RUNS/facets/slots_s0,RUNS/facets/slots_s1" \\
      [--keep=benchmarks/results/facets/facets.json] --output_dir=benchmarks/results/facets

Each --run is NAME=DIR[,DIR...], one directory per seed, each with `labels.txt`,
`train_label_counts.json` and `predictions_{dev,test}.jsonl` (a run trained with
`--test_fraction` and `--do_predict`, or `laco_tf.study.baselines`). From the runs' own
decisions ("predicted") and scores ("probabilities") it computes, for dev and held-out:

- micro-F1; macro-F1 over every training label (the run's labels.txt) and over the labels
  with a gold story in the split;
- P@1, P@3, P@5, nDCG@3, nDCG@5 (`laco_tf.training.metrics.ranking_metrics`);
- micro- and macro-F1 per facet, a facet being the part of a label before its first ":"
  (`topics:acq` is in `topics`); labels without ":" form the facet "-";
- macro-F1 of the paper's Figure 2 frequency groups (`laco_tf.study.analysis`): labels
  sorted by training frequency, cut into four groups, most frequent first.

--keep carries the seeds of an earlier facets.json whose run directories are gone (a fresh
checkout, another machine) into the new table, so that a seed run later joins its model's
row: a model named again gets the seeds of its new directories added, a directory scored
again replaces its kept seed, and models not named again stay as they were.

Prints Markdown tables, writes facets.json and facets.png (held-out micro- and macro-F1
of each facet, per model) to --output_dir. Imports no TensorFlow.
"""

import json
import os
import statistics
import sys

from absl import flags
import numpy as np

from laco_tf import cli, plots, results, run_dir
from laco_tf.errors import InputError
from laco_tf.study import analysis
from laco_tf.training import metrics

SPLITS = ("dev", "test")
HEADLINE = ("micro_f1", "macro_f1", "macro_f1_present", "precision_at_1", "precision_at_3",
            "precision_at_5", "ndcg_at_3", "ndcg_at_5")
N_GROUPS = 4


def facet_of(label: str) -> str:
  return label.split(":", 1)[0] if ":" in label else "-"


def run_scores(directory: str) -> dict:
  """{split: {metric: value}} of one run directory (F1 and ranking values in %)."""
  labels = run_dir.read_labels(directory)
  counts = run_dir.read_json(directory, "train_label_counts.json")
  groups = analysis.frequency_groups({l: counts.get(l, 0) for l in labels}, N_GROUPS)
  facets = sorted({facet_of(l) for l in labels})
  out = {}
  for split in SPLITS:
    _, gold, pred, scores = run_dir.read_predictions(directory, split, labels)
    whole = metrics.multilabel_metrics(gold, pred)
    present = gold.any(0)
    row = {"micro_f1": whole["micro_f1"], "macro_f1": whole["macro_f1"],
           "macro_f1_present": metrics.multilabel_metrics(
               gold[:, present], pred[:, present])["macro_f1"]}
    row.update(metrics.ranking_metrics(gold, scores))
    for facet in facets:
      cols = [j for j, l in enumerate(labels) if facet_of(l) == facet]
      scored = metrics.multilabel_metrics(gold[:, cols], pred[:, cols])
      row[f"{facet}/micro_f1"], row[f"{facet}/macro_f1"] = scored["micro_f1"], scored["macro_f1"]
    for i, value in enumerate(analysis.group_macro_f1(gold, pred, labels, groups)):
      row[f"group_{i + 1}/macro_f1"] = value
    out[split] = {k: 100 * v for k, v in row.items()}
  out["facets"] = facets
  out["group_sizes"] = [len(g) for g in groups]
  return out


def _cell(values: list) -> str:
  if len(values) == 1:
    return f"{values[0]:.2f}"
  return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def table(rows: list, columns: list, split: str) -> str:
  """A Markdown table of `columns` ([(key, header)]) of `split`, one line per model."""
  lines = ["| model | seeds | " + " | ".join(h for _, h in columns) + " |",
           "| --- | --- |" + " --- |" * len(columns)]
  for r in rows:
    cells = [_cell([s[split][k] for s in r["seeds"]]) if all(k in s[split] for s in r["seeds"])
             else "-" for k, _ in columns]
    lines.append(f"| {r['model']} | {len(r['seeds'])} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def report(rows: list) -> str:
  facets = sorted({f for r in rows for s in r["seeds"] for f in s["facets"]})
  names = {"micro_f1": "micro-F1", "macro_f1": "macro-F1 (all labels)",
           "macro_f1_present": "macro-F1 (labels present)", "precision_at_1": "P@1",
           "precision_at_3": "P@3", "precision_at_5": "P@5", "ndcg_at_3": "nDCG@3",
           "ndcg_at_5": "nDCG@5"}
  sizes = rows[0]["seeds"][0]["group_sizes"]
  parts = []
  for split, title in (("dev", "dev"), ("test", "held-out")):
    parts.append(f"**{title}**\n\n" + table(rows, [(k, names[k]) for k in HEADLINE], split))
  parts.append("**held-out, per facet (micro-F1 / macro-F1)**\n\n" + table(
      rows, [(f"{f}/{m}", f"{f} {m.split('_')[0]}") for f in facets
             for m in ("micro_f1", "macro_f1")], "test"))
  parts.append("**held-out, macro-F1 per training-frequency group (most frequent first; "
               f"{', '.join(map(str, sizes))} labels)**\n\n" + table(
                   rows, [(f"group_{i + 1}/macro_f1", f"group {i + 1}")
                          for i in range(len(sizes))], "test"))
  return "\n\n".join(parts)


def plot(rows: list, path: str) -> None:
  facets = sorted({f for r in rows for s in r["seeds"] for f in s["facets"]})
  fig, axes = plots.plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
  width = 0.8 / len(rows)
  for ax, metric in zip(axes, ("micro_f1", "macro_f1")):
    for i, r in enumerate(rows):
      means = [statistics.mean([s["test"].get(f"{f}/{metric}", 0.0) for s in r["seeds"]])
               for f in facets]
      ax.bar(np.arange(len(facets)) + i * width, means, width, label=r["model"])
    ax.set_xticks(np.arange(len(facets)) + 0.4 - width / 2, facets)
    ax.set_title(f"held-out {metric.replace('_f1', '-F1')} per facet (%)")
    ax.grid(axis="y", alpha=0.3)
  axes[1].legend(fontsize=7, loc="upper left")  # macro-F1 leaves the top free
  fig.tight_layout()
  plots.save_figure(fig, path)


def parse_runs(specs) -> list:
  """[(name, [dir, ...])] of --run NAME=DIR[,DIR...] values."""
  runs = []
  for spec in specs:
    name, sep, dirs = spec.partition("=")
    if not sep or not name or not dirs:
      raise InputError(f"--run={spec}: expected NAME=DIR[,DIR...]")
    runs.append((name, dirs.split(",")))
  return runs


def merge_kept(kept: list, rows: list) -> list:
  """Kept rows in their order, each with the seeds of the same model's new rows (a
  directory scored again replaces its kept seed), then the rows of new models."""
  new = {r["model"]: r for r in rows}
  merged = []
  for old in kept:
    now = new.pop(old["model"], None)
    if now is None:
      merged.append(old)
      continue
    # Directories compare as normalised paths: "RUNS/x/" and "./RUNS/x" are one seed.
    seeds = dict(zip(map(os.path.normpath, old["dirs"]), old["seeds"]))
    seeds.update(zip(map(os.path.normpath, now["dirs"]), now["seeds"]))
    merged.append({"model": old["model"], "dirs": list(seeds), "seeds": list(seeds.values())})
  return merged + [r for r in rows if r["model"] in new]


def read_kept(path: str) -> list:
  """The rows of an earlier facets.json; InputError naming the file when it is not one."""
  try:
    with open(path, encoding="utf-8") as f:
      rows = json.load(f)
    if not all({"model", "dirs", "seeds"} <= set(r) and len(r["dirs"]) == len(r["seeds"])
               for r in rows):
      raise ValueError("rows without model, dirs and seeds")
  except (OSError, ValueError, TypeError) as e:
    raise InputError(f"--keep={path}: expected a facets.json written by this tool ({e})") from e
  return rows


def write_table(specs, output_dir: str, keep: str = None) -> str:
  """Scores the runs of --run `specs` (with the kept rows of `keep`, a facets.json),
  writes facets.json and facets.png; returns the Markdown tables."""
  kept = read_kept(keep) if keep else None  # a bad file fails before any scoring
  rows = [{"model": name, "dirs": dirs, "seeds": [run_scores(d) for d in dirs]}
          for name, dirs in parse_runs(specs)]
  if kept is not None:
    rows = merge_kept(kept, rows)
  os.makedirs(output_dir, exist_ok=True)
  results.write_atomically(os.path.join(output_dir, "facets.json"), json.dumps(rows, indent=1))
  plot(rows, os.path.join(output_dir, "facets.png"))
  return report(rows)


def _define_flags():
  flags.DEFINE_multi_string("run", None, "NAME=DIR[,DIR...]: a model and its runs, one per "
                            "seed (repeat for each model).")
  flags.DEFINE_string("keep", None, "An earlier facets.json whose seeds stay in the table "
                      "(their run directories may be gone); --run seeds are added to them.")
  flags.DEFINE_string("output_dir", None, "Where facets.json and facets.png go.")


def main(argv):
  del argv
  f = flags.FLAGS
  try:
    if not f.run or not f.output_dir:
      raise InputError("--run and --output_dir are required")
    print(write_table(f.run, f.output_dir, f.keep))
  except InputError as e:
    cli.fail(e)
  print(f"Wrote facets.json and facets.png to {f.output_dir}", file=sys.stderr)


def console() -> None:
  """Entry point of the installed command (pyproject.toml's [project.scripts])."""
  _define_flags()
  cli.run(main, cli.installed_name(), [__name__])


if __name__ == "__main__":
  _define_flags()
  cli.run(main, "laco_tf.study.facets_table", [__name__])
