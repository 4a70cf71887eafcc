#!/usr/bin/env python3
"""The many-label table: decisions and rankings of finished runs, whole, per facet and per
frequency group, mean and spread over seeds.

  python benchmarks/facets_table.py \\
      --run "BR-SVM=RUNS/facets/svm" \\
      --run "LACO+clcp, 64 slots, shortlist=RUNS/facets/slots_s0,RUNS/facets/slots_s1" \\
      [--out=benchmarks/results/facets]

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

Prints Markdown tables, writes facets.json and facets.png (held-out micro- and macro-F1
of each facet, per model) to --out.
"""

import argparse
import json
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.heldout_table import parse_runs, prediction_lines  # noqa: E402
from laco_tf.study import analysis  # noqa: E402  (no TensorFlow)
from laco_tf.training import metrics  # noqa: E402

SPLITS = ("dev", "test")
HEADLINE = ("micro_f1", "macro_f1", "macro_f1_present", "precision_at_1", "precision_at_3",
            "precision_at_5", "ndcg_at_3", "ndcg_at_5")
N_GROUPS = 4


def facet_of(label: str) -> str:
  return label.split(":", 1)[0] if ":" in label else "-"


def read_split(directory: str, split: str, labels: list):
  """(gold, decisions, scores) [N, n] arrays of a run's predictions_<split>.jsonl."""
  rows = prediction_lines(
      os.path.join(directory, f"predictions_{split}.jsonl"),
      lambda row: ([l in row["labels"] for l in labels], [l in row["predicted"] for l in labels],
                   [row["probabilities"][l] for l in labels]),
      "'labels', 'predicted' and a probability for every label", "facets_table.py")
  shape = (-1, len(labels))
  return tuple(np.array([r[i] for r in rows], t).reshape(shape)
               for i, t in ((0, bool), (1, bool), (2, float)))


def _read_json(path: str):
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    sys.exit(f"facets_table.py: error: {path}: expected a run's JSON file ({e})")


def run_scores(directory: str) -> dict:
  """{split: {metric: value}} of one run directory (F1 and ranking values in %)."""
  path = os.path.join(directory, "labels.txt")
  try:
    with open(path, encoding="utf-8") as f:
      labels = [l.rstrip("\r\n") for l in f if l.strip()]
  except OSError as e:
    sys.exit(f"facets_table.py: error: {path} is missing or unreadable: {e.strerror}")
  counts = _read_json(os.path.join(directory, "train_label_counts.json"))
  groups = analysis.frequency_groups({l: counts.get(l, 0) for l in labels}, N_GROUPS)
  facets = sorted({facet_of(l) for l in labels})
  out = {}
  for split in SPLITS:
    gold, pred, scores = read_split(directory, split, labels)
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
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  facets = sorted({f for r in rows for s in r["seeds"] for f in s["facets"]})
  fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
  width = 0.8 / len(rows)
  for ax, metric in zip(axes, ("micro_f1", "macro_f1")):
    for i, r in enumerate(rows):
      means = [statistics.mean([s["test"].get(f"{f}/{metric}", 0.0) for s in r["seeds"]])
               for f in facets]
      ax.bar(np.arange(len(facets)) + i * width, means, width, label=r["model"])
    ax.set_xticks(np.arange(len(facets)) + 0.4 - width / 2, facets)
    ax.set_title(f"held-out {metric.replace('_', '-')} per facet (%)")
    ax.grid(axis="y", alpha=0.3)
  axes[0].legend(fontsize=7, loc="lower left")
  fig.tight_layout()
  fig.savefig(path + ".tmp.png", dpi=110)
  plt.close(fig)
  os.replace(path + ".tmp.png", path)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--run", action="append", required=True, help="NAME=DIR[,DIR...]")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                    "facets"))
  args = parser.parse_args()
  rows = [{"model": name, "dirs": dirs, "seeds": [run_scores(d) for d in dirs]}
          for name, dirs in parse_runs(args.run, "facets_table.py")]
  print(report(rows))
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, "facets.json")
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(rows, f, indent=1)
  os.replace(path + ".tmp", path)
  plot(rows, os.path.join(args.out, "facets.png"))
  print(f"Wrote {path} and facets.png", file=sys.stderr)  # stdout: the tables alone


if __name__ == "__main__":
  main()
