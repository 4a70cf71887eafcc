"""One configuration over several seeds, and a paired test between two configurations
(paper 5.1, Table 3).

  python -m laco_tf.study.multi_seed run --seeds=1,2,3 --output_dir=BASE -- [run_classifier flags]
  python -m laco_tf.study.multi_seed summarize --output_dir=BASE
  python -m laco_tf.study.multi_seed compare --runs_a=BASE_A --runs_b=BASE_B [--metric=micro_f1]
      [--split=test] [--plot_file=PNG]

`run` trains ``run_classifier.py`` once per seed into ``BASE/seed_S`` (each resumable as
usual) and writes ``BASE/seeds_summary.json`` with mean, sample standard deviation
(ddof=1) and per-seed values of every metric. `summarize` rewrites that file over every
``seed_S`` present (seeds trained in several calls, or linked in from elsewhere).
Pass ``--dev_split_seed`` after ``--`` to keep one carved dev split across seeds.
`compare` pairs the seeds both bases have and runs a two-sided paired t-test
(scipy.stats.ttest_rel) on one metric.
"""

import json
import os
import subprocess
import sys

import numpy as np
from absl import flags

from laco_tf import cli, results
from laco_tf.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run_classifier.py


def seed_dirs(base: str) -> dict:
  """{seed: run dir} for every ``seed_S`` directory under `base`."""
  if not os.path.isdir(base):
    raise InputError(f"{base}: no such directory")
  out = {}
  for name in sorted(os.listdir(base)):
    if name.startswith("seed_") and name[5:].lstrip("-").isdigit():
      out[int(name[5:])] = os.path.join(base, name)
  return out


def aggregate(run_dirs: dict, split: str) -> dict:
  """{metric: {"mean", "std", "values": {seed: value}}} over the runs' eval results."""
  values = {}
  for seed, run_dir in sorted(run_dirs.items()):
    path = os.path.join(run_dir, f"eval_results_{split}.json")
    if not os.path.isfile(path):
      raise InputError(f"{path}: missing (did the seed-{seed} run finish?)")
    with open(path, encoding="utf-8") as f:
      for k, v in json.load(f).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
          values.setdefault(k, {})[seed] = float(v)
  return {k: {"mean": float(np.mean(list(v.values()))),
              "std": float(np.std(list(v.values()), ddof=1)) if len(v) > 1 else 0.0,
              "values": v} for k, v in values.items()}


def paired_test(a, b) -> dict:
  """Two-sided paired t-test of equal means; `a` and `b` are per-seed scores, same order."""
  from scipy import stats  # pylint: disable=import-outside-toplevel
  if len(a) != len(b) or len(a) < 2:
    raise InputError(f"a paired test needs the same seeds on both sides, at least 2 "
                     f"(got {len(a)} and {len(b)})")
  t, p = stats.ttest_rel(a, b)
  return {"t": float(t), "p_value": float(p), "n": len(a), "mean_a": float(np.mean(a)),
          "mean_b": float(np.mean(b))}


def summarize(base: str, seeds=None) -> dict:
  """Writes BASE/seeds_summary.json over `seeds` (default: every seed_S under `base`).

  A split is summarised when every seed has results for it.
  """
  dirs = (seed_dirs(base) if seeds is None
          else {s: os.path.join(base, f"seed_{s}") for s in seeds})
  if not dirs:
    raise InputError(f"{base}: no seed_S directories to summarise")
  summary = {split: aggregate(dirs, split) for split in ("dev", "test")
             if all(os.path.isfile(os.path.join(d, f"eval_results_{split}.json"))
                    for d in dirs.values())}
  results.write_atomically(os.path.join(base, "seeds_summary.json"),
                           json.dumps(summary, indent=1))
  print(f"seeds {sorted(dirs)}")
  for split, metrics in summary.items():
    print(f"{split}: " + ", ".join(f"{k}={metrics[k]['mean']:.4f}±{metrics[k]['std']:.4f}"
                                   for k in ("micro_f1", "macro_f1", "hamming_loss")
                                   if k in metrics))
  return summary


def run_seeds(seeds, base: str, passthrough) -> dict:
  for seed in seeds:
    out = os.path.join(base, f"seed_{seed}")
    print(f"== seed {seed}: {out}", flush=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "run_classifier.py"), *passthrough,
                    f"--seed={seed}", f"--output_dir={out}"], check=True)
  return summarize(base, seeds)


def _define_flags():
  flags.DEFINE_list("seeds", ["1", "2", "3"], "run: seeds to train with.")
  flags.DEFINE_string("output_dir", None, "run, summarize: base directory; each seed is in "
                      "seed_S.")
  flags.DEFINE_string("runs_a", None, "compare: base directory of configuration A.")
  flags.DEFINE_string("runs_b", None, "compare: base directory of configuration B.")
  flags.DEFINE_string("metric", "micro_f1", "compare: the metric to test.")
  flags.DEFINE_enum("split", "test", ["dev", "test"], "compare: the split to test on.")
  flags.DEFINE_string("plot_file", None, "compare: also draw the per-seed scores of both "
                      "configurations to this PNG.")


def main(argv):
  f = flags.FLAGS
  try:
    if len(argv) < 2 or argv[1] not in ("run", "summarize", "compare"):
      raise InputError("expected 'run', 'summarize' or 'compare' as the first argument")
    if argv[1] == "summarize":
      if not f.output_dir:
        raise InputError("--output_dir is required with 'summarize'")
      summarize(f.output_dir)
      return
    if argv[1] == "run":
      if not f.output_dir:
        raise InputError("--output_dir is required with 'run'")
      forbidden = [a for a in argv[2:] if a.startswith(("--seed=", "--output_dir="))]
      if forbidden:
        raise InputError(f"{forbidden[0]}: set by multi_seed itself; remove it after '--'")
      run_seeds([int(s) for s in f.seeds], f.output_dir, argv[2:])
      return
    a, b = seed_dirs(f.runs_a or ""), seed_dirs(f.runs_b or "")
    common = sorted(set(a) & set(b))
    scores = [aggregate({s: d[s] for s in common}, f.split)[f.metric]["values"] for d in (a, b)]
    result = paired_test([scores[0][s] for s in common], [scores[1][s] for s in common])
    print(json.dumps({"metric": f.metric, "split": f.split, "seeds": common, **result},
                     indent=1))
    if f.plot_file:
      from laco_tf import plots  # pylint: disable=import-outside-toplevel
      names = [os.path.basename(os.path.normpath(d)) for d in (f.runs_a, f.runs_b)]
      plots.plot_paired_seeds(list(zip(names, scores)), f.metric,
                              f"{f.split} {f.metric}, paired t-test p = {result['p_value']:.3g}",
                              f.plot_file)
      print(f"Figure written to {f.plot_file}")
  except InputError as e:
    cli.fail(e)


def console() -> None:
  """Entry point of the installed command (pyproject.toml's [project.scripts])."""
  _define_flags()
  cli.run(main, cli.installed_name(), [__name__])


if __name__ == "__main__":
  _define_flags()
  cli.run(main, "laco_tf.study.multi_seed", [__name__])
