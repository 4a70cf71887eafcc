"""Report of the paper's Section 5 analyses over one or two finished runs.

  python -m laco_tf.study.analyze --run_dir=RUN [--compare_run_dir=OTHER] [--output_dir=DIR]

Reads what `run_classifier.py` or `laco_tf.study.baselines` wrote (labels.txt,
train_label_counts.json, predictions_*.jsonl, history.jsonl) and writes report.md with
the main metrics (Table 2 columns), macro-F1 per frequency group (Figure 2), KL of the
conditional label co-occurrence (Table 5; on train only when the run predicted train,
see --do_predict_train), label-set diversity (Table 6) and, for trained runs, dev
micro-F1 against step (Figure 3), plus PNG figures. Numbers come from `analysis`.
"""

import json
import os

import numpy as np
from absl import flags

from laco_tf import cli, plots, results
from laco_tf.data import text_files
from laco_tf.study import analysis
from laco_tf.training import metrics
from laco_tf.errors import InputError

_COLUMNS = ("hamming_loss", "micro_precision", "micro_recall", "micro_f1", "macro_precision",
            "macro_recall", "macro_f1", "subset_accuracy")


def read_run(run_dir: str) -> dict:
  """The files of one run, as arrays; raises InputError naming what is missing."""
  def path(name):
    return os.path.join(run_dir, name)
  for needed in ("labels.txt", "train_label_counts.json"):
    if not os.path.isfile(path(needed)):
      raise InputError(f"--run_dir={run_dir}: no {needed} (not a LACO-TF run directory?)")
  labels = [l for l in text_files.read_lines(path("labels.txt")) if l.strip()]
  with open(path("train_label_counts.json"), encoding="utf-8") as f:
    counts = json.load(f)
  run = {"name": os.path.basename(os.path.normpath(run_dir)), "labels": labels,
         "train_counts": counts, "splits": {}, "history": []}
  for split in ("train", "dev", "test"):
    if os.path.isfile(path(f"predictions_{split}.jsonl")):
      with open(path(f"predictions_{split}.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(l) for l in f if l.strip()]
      run["splits"][split] = {
          "gold": np.array([[l in r["labels"] for l in labels] for r in rows], np.int32),
          "pred": np.array([[l in r["predicted"] for l in labels] for r in rows], np.int32)}
  if os.path.isfile(path("history.jsonl")):
    with open(path("history.jsonl"), encoding="utf-8") as f:
      run["history"] = [json.loads(l) for l in f if l.strip()]
  if "test" not in run["splits"] and "dev" not in run["splits"]:
    raise InputError(f"--run_dir={run_dir}: no predictions_test.jsonl or predictions_dev.jsonl")
  return run


def _split_of(run):
  return "test" if "test" in run["splits"] else "dev"


def _figures(runs, groups, out_dir):
  plt = plots.plt
  paths = {}
  counts = runs[0]["train_counts"]
  ordered = sorted(counts.values(), reverse=True)
  fig, ax = plt.subplots(figsize=(7, 3.5))
  ax.bar(range(len(ordered)), ordered)
  ax.set(title="training label frequency (Figure 2a)", xlabel="label rank", ylabel="documents",
         yscale="log")
  paths["frequency"] = _save(fig, os.path.join(out_dir, "label_frequency.png"))
  fig, ax = plt.subplots(figsize=(7, 3.5))
  width = 0.8 / len(runs)
  for k, run in enumerate(runs):
    split = run["splits"][_split_of(run)]
    scores = analysis.group_macro_f1(split["gold"], split["pred"], run["labels"], groups)
    ax.bar(np.arange(len(groups)) + k * width, scores, width, label=run["name"])
  ax.set_xticks(np.arange(len(groups)) + width * (len(runs) - 1) / 2,
                [f"Group{i + 1}" for i in range(len(groups))])
  ax.set(title="macro-F1 by label frequency group (Figure 2b)", ylim=(0, 1))
  ax.legend()
  paths["groups"] = _save(fig, os.path.join(out_dir, "frequency_groups.png"))
  if any(run["history"] for run in runs):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for run in runs:
      if run["history"]:
        ax.plot([r["step"] for r in run["history"]],
                [r["dev"]["micro_f1"] for r in run["history"]], marker="o", label=run["name"])
    ax.set(title="dev micro-F1 against step (Figure 3)", xlabel="step", ylabel="micro-F1")
    ax.legend()
    paths["convergence"] = _save(fig, os.path.join(out_dir, "convergence.png"))
  return paths


def _save(fig, path):
  return os.path.basename(plots.save_figure(fig, path))


def write_report(run_dirs, output_dir: str) -> str:
  """Analyses each run in `run_dirs` side by side; returns the report's path."""
  runs = [read_run(d) for d in run_dirs]
  if any(r["labels"] != runs[0]["labels"] for r in runs):
    raise InputError("--compare_run_dir: the runs have different label sets")
  os.makedirs(output_dir, exist_ok=True)
  groups = analysis.frequency_groups(runs[0]["train_counts"])
  lines = ["# LACO-TF analysis", "", f"Runs: {', '.join(r['name'] for r in runs)}.", "",
           "## Main metrics (Table 2 columns)", "",
           "| run | split | " + " | ".join(_COLUMNS) + " |",
           "| --- | --- |" + " --- |" * len(_COLUMNS)]
  for run in runs:
    split = _split_of(run)
    m = metrics.multilabel_metrics(run["splits"][split]["gold"], run["splits"][split]["pred"])
    lines.append(f"| {run['name']} | {split} | " + " | ".join(
        f"{m[c]:.4f}" for c in _COLUMNS) + " |")
  lines += ["", "## Low-frequency labels (Figure 2)", "",
            f"Labels sorted by training frequency, cut into {len(groups)} groups of equal "
            "size (Group1 most frequent). Group sizes: " +
            ", ".join(str(len(g)) for g in groups) + ".", "",
            "| run | " + " | ".join(f"Group{i + 1}" for i in range(len(groups))) + " |",
            "| --- |" + " --- |" * len(groups)]
  for run in runs:
    s = run["splits"][_split_of(run)]
    lines.append(f"| {run['name']} | " + " | ".join(
        f"{v:.4f}" for v in analysis.group_macro_f1(s["gold"], s["pred"], run["labels"],
                                                    groups)) + " |")
  lines += ["", "## Label correlation: KL(P^g || P^p) of p(y_b | y_a) (Table 5, eq. 8)", "",
            "| run | train | dev | test |", "| --- | --- | --- | --- |"]
  for run in runs:
    cells = [f"{analysis.conditional_kl(run['splits'][s]['gold'], run['splits'][s]['pred']):.4f}"
             if s in run["splits"] else "n/a" for s in ("train", "dev", "test")]
    lines.append(f"| {run['name']} | " + " | ".join(cells) + " |")
  lines += ["", "## Label combination diversity (Table 6)", "",
            "| run | split | C (predicted) | C (gold) | subset accuracy |",
            "| --- | --- | --- | --- | --- |"]
  for run in runs:
    split = _split_of(run)
    s = run["splits"][split]
    acc = metrics.multilabel_metrics(s["gold"], s["pred"])["subset_accuracy"]
    lines.append(f"| {run['name']} | {split} | {analysis.label_set_count(s['pred'])} | "
                 f"{analysis.label_set_count(s['gold'])} | {acc:.4f} |")
  figures = _figures(runs, groups, output_dir)
  lines += ["", "## Figures", ""] + [f"![{k}]({v})" for k, v in figures.items()] + [""]
  report = os.path.join(output_dir, "report.md")
  results.write_atomically(report, "\n".join(lines))
  return report


def _define_flags():
  flags.DEFINE_string("run_dir", None, "A finished run's output directory.")
  flags.DEFINE_string("compare_run_dir", None, "Another run to show side by side.")
  flags.DEFINE_string("output_dir", None, "Where the report goes (default RUN_DIR/analysis).")


def main(argv):
  del argv
  f = flags.FLAGS
  try:
    if not f.run_dir:
      raise InputError("--run_dir is required")
    dirs = [f.run_dir] + ([f.compare_run_dir] if f.compare_run_dir else [])
    print(f"Report written to {write_report(dirs, f.output_dir or os.path.join(f.run_dir, 'analysis'))}")
  except InputError as e:
    cli.fail(e)


def console() -> None:
  """Entry point of the installed command (pyproject.toml's [project.scripts])."""
  _define_flags()
  cli.run(main, cli.installed_name(), [__name__])


if __name__ == "__main__":
  _define_flags()
  cli.run(main, "laco_tf.study.analyze", [__name__])
