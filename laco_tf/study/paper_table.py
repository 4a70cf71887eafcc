"""The Reuters-21578 results table of BENCHMARKS.md: every row, from one command.

  python -m laco_tf.study.paper_table --data_dir=PATH/TO/reuters --runs_dir=RUNS \\
      [--rows=br,cc,bert,laco,plcp,clcp,both] [--max_seq_length=256] [--epochs=2] \\
      [--batch_size=16] [--seed=0]

A row may carry its own epoch count, `--rows=bert:3,clcp:3`; its directory is then
RUNS/bert_3ep, so runs of one model at different lengths sit side by side.

`--data_dir` is NLTK's Reuters-21578 (ApteMod) directory (``cats.txt``, ``training/``).
Dev is carved from the training stories by run_classifier.py's rule (10%, seed 0); with
no test split, the table reports dev. Each row is a separate output directory under
RUNS, so an interrupted table resumes row by row: a row whose directory already holds
dev results is read, not rerun (`--rerun` forces it; an interrupted neural run continues
through run_classifier.py's own resume). Writes RUNS/paper_table.md and, for each BERT
baseline row listed (mean and [CLS] pooling; the last listed of each), the analysis
report against (the last listed) LACO+clcp, in RUNS/analysis_bert_vs_clcp and
RUNS/analysis_bert_cls_vs_clcp.
"""

import argparse
import os
import subprocess
import sys

from laco_tf import results, run_dir
from laco_tf.study import analyze, baselines

# The repository root, where run_classifier.py is.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ROWS = {
    "br": ("BR (TF-IDF, linear SVM)", None),
    "cc": ("CC (TF-IDF, linear SVM)", None),
    "bert": ("BERT baseline (mean pooling)",
             ["--task=mltc", "--nojoint_embedding", "--nocross_attention", "--pooling=mean"]),
    "laco": ("LACO", ["--task=mltc"]),
    "plcp": ("LACO+plcp", ["--task=plcp"]),
    "clcp": ("LACO+clcp", ["--task=clcp"]),
    "both": ("LACO+plcp+clcp", ["--task=both"]),
    "bert_cls": ("BERT baseline ([CLS] pooling)",
                 ["--task=mltc", "--nojoint_embedding", "--nocross_attention", "--pooling=cls"]),
}


def parse_rows(text, default_epochs):
  """'bert:3,clcp' -> [(key, epochs, directory name)]; one-line error on a bad entry."""
  rows = []
  for item in text.split(","):
    key, _, epochs = item.strip().partition(":")
    if key not in ROWS:
      raise SystemExit(f"--rows: unknown row {key!r}; expected one of {', '.join(ROWS)}")
    try:
      n = float(epochs) if epochs else default_epochs
    except ValueError:
      raise SystemExit(f"--rows: {item!r} needs a number of epochs after ':'") from None
    if ROWS[key][1] is None or n == default_epochs:
      rows.append((key, n, key))
    else:
      rows.append((key, n, f"{key}_{n:g}ep"))
  return rows


def run_row(key, epochs, name, args):
  out = os.path.join(args.runs_dir, name)
  if os.path.exists(os.path.join(out, run_dir.eval_results_name("dev"))) and not args.rerun:
    print(f"{name}: finished earlier, reading {out}", flush=True)
    return out
  _, flags = ROWS[key]
  if flags is None:
    baselines.run_baseline(key, args.data_dir, out, seed=args.seed)
    return out
  cmd = [sys.executable, os.path.join(ROOT, "run_classifier.py"), f"--data_dir={args.data_dir}",
         f"--output_dir={out}", f"--max_seq_length={args.max_seq_length}",
         f"--train_batch_size={args.batch_size}", f"--num_train_epochs={epochs}",
         f"--seed={args.seed}", "--do_train", "--do_eval", *flags]
  if args.predict_train:
    cmd.append("--do_predict_train")
  print("+", " ".join(cmd), flush=True)
  subprocess.run(cmd, check=True, cwd=ROOT)
  return out


def row_cells(key, epochs, out):
  r = run_dir.read_json(out, run_dir.eval_results_name("dev"))
  summary = run_dir.read_json(out, "run_summary.json")
  # Baselines record "train_seconds"; run_classifier.py records train.seconds.
  seconds = summary.get("train_seconds") or summary.get("train", {}).get("seconds", 0.0)
  trained = "-" if ROWS[key][1] is None else f"{epochs:g}"
  return (f"| {ROWS[key][0]} | {trained} | {r['micro_f1']:.4f} | {r['macro_f1']:.4f} | "
          f"{r['hamming_loss']:.5f} | {r['subset_accuracy']:.4f} | {r['predicted_label_sets']} "
          f"| {seconds / 60:.1f} |")


def gold_label_sets(out):
  """Distinct gold label sets on dev (over the labels the run knows): Table 6's ground truth."""
  gold = run_dir.read_predictions(out, "dev", run_dir.read_labels(out),
                                  with_probabilities=False).gold
  return len({tuple(row) for row in gold})


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--runs_dir", required=True)
  parser.add_argument("--rows", default=",".join(ROWS))
  parser.add_argument("--max_seq_length", type=int, default=256)
  parser.add_argument("--epochs", type=float, default=2)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--predict_train", action="store_true",
                      help="Neural rows also predict the training split (the train column "
                           "of the label-correlation analysis).")
  parser.add_argument("--rerun", action="store_true",
                      help="Run rows whose directory already holds dev results again.")
  args = parser.parse_args()
  os.makedirs(args.runs_dir, exist_ok=True)
  outs, rows = {}, []
  for key, epochs, name in parse_rows(args.rows, args.epochs):
    outs[key] = run_row(key, epochs, name, args)
    rows.append(row_cells(key, epochs, outs[key]))
    lines = ["| model | epochs | dev micro-F1 | dev macro-F1 | hamming loss | subset acc. | "
             f"C (dev; gold {gold_label_sets(outs[key])}) | train min |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |", *rows]
    results.write_atomically(os.path.join(args.runs_dir, "paper_table.md"),
                             "\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
  for baseline in ("bert", "bert_cls"):
    if baseline in outs and "clcp" in outs:
      report = analyze.write_report([outs[baseline], outs["clcp"]],
                                    os.path.join(args.runs_dir, f"analysis_{baseline}_vs_clcp"))
      print(f"Analysis: {report}")


if __name__ == "__main__":
  main()
