#!/usr/bin/env python3
"""The Reuters-21578 results table of BENCHMARKS.md: every row, from one command.

  python benchmarks/reuters_table.py --data_dir=PATH/TO/reuters --runs_dir=RUNS \
      [--rows=br,cc,bert,laco,plcp,clcp,both] [--max_seq_length=256] [--epochs=2] \
      [--batch_size=16] [--seed=0]

`--data_dir` is NLTK's Reuters-21578 (ApteMod) directory (``cats.txt``, ``training/``).
Dev is carved from the training stories by run_classifier.py's rule (10%, seed 0); with
no test split, the table reports dev. Each row is a separate output directory under
RUNS, so an interrupted table resumes row by row (a finished neural run is skipped
through run_classifier.py's own resume). Writes RUNS/reuters_table.md and, once both
exist, the analysis report of the BERT baseline against LACO+clcp.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from laco_tf import analyze, baselines  # noqa: E402  pylint: disable=wrong-import-position

ROWS = {
    "br": ("BR (TF-IDF, linear SVM)", None),
    "cc": ("CC (TF-IDF, linear SVM)", None),
    "bert": ("BERT baseline (mean pooling)",
             ["--task=mltc", "--nojoint_embedding", "--nocross_attention", "--pooling=mean"]),
    "laco": ("LACO", ["--task=mltc"]),
    "plcp": ("LACO+plcp", ["--task=plcp"]),
    "clcp": ("LACO+clcp", ["--task=clcp"]),
    "both": ("LACO+plcp+clcp", ["--task=both"]),
}


def run_row(key, args):
  out = os.path.join(args.runs_dir, key)
  _, flags = ROWS[key]
  if flags is None:
    baselines.run_baseline(key, args.data_dir, out, seed=args.seed)
    return out
  cmd = [sys.executable, os.path.join(ROOT, "run_classifier.py"), f"--data_dir={args.data_dir}",
         f"--output_dir={out}", f"--max_seq_length={args.max_seq_length}",
         f"--train_batch_size={args.batch_size}", f"--num_train_epochs={args.epochs}",
         f"--seed={args.seed}", "--do_train", "--do_eval", *flags]
  print("+", " ".join(cmd), flush=True)
  subprocess.run(cmd, check=True, cwd=ROOT)
  return out


def row_cells(key, out):
  with open(os.path.join(out, "eval_results_dev.json")) as f:
    r = json.load(f)
  with open(os.path.join(out, "run_summary.json")) as f:
    summary = json.load(f)
  seconds = summary.get("train_seconds") or summary.get("train", {}).get("seconds", 0.0)
  return (f"| {ROWS[key][0]} | {r['micro_f1']:.4f} | {r['macro_f1']:.4f} | "
          f"{r['hamming_loss']:.5f} | {r['subset_accuracy']:.4f} | {r['predicted_label_sets']} "
          f"| {seconds / 60:.1f} |")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data_dir", required=True)
  parser.add_argument("--runs_dir", required=True)
  parser.add_argument("--rows", default=",".join(ROWS))
  parser.add_argument("--max_seq_length", type=int, default=256)
  parser.add_argument("--epochs", type=float, default=2)
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  lines = ["| model | dev micro-F1 | dev macro-F1 | hamming loss | subset acc. | C (dev) | "
           "train min |", "| --- | --- | --- | --- | --- | --- | --- |"]
  outs = {}
  for key in args.rows.split(","):
    outs[key] = run_row(key, args)
    lines.append(row_cells(key, outs[key]))
    with open(os.path.join(args.runs_dir, "reuters_table.md"), "w") as f:
      f.write("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
  if "bert" in outs and "clcp" in outs:
    report = analyze.write_report([outs["bert"], outs["clcp"]],
                                  os.path.join(args.runs_dir, "analysis_bert_vs_clcp"))
    print(f"Analysis: {report}")


if __name__ == "__main__":
  main()
