#!/usr/bin/env python3
"""Peak memory of scoring many texts from Python: `Classifier` (chunked) against one call.

  python benchmarks/scoring_memory.py [--sizes=1000,10000,100000] [--single_max=10000]
                                      [--model=OUT/export] [--out=benchmarks/results/scoring_memory]

Scores with --model (an export base or version), or else trains a tiny random BERT (the
tests' 2-layer, hidden-32 config) on the tests' 4-label corpus for 2 steps and exports it. Then, for each size, a fresh process scores that
many texts (the bundled sample's test texts, cycled) and reports its peak RSS
(`ru_maxrss`) and wall time: through `laco_tf.Classifier.predict_proba` (batches of 64),
and, up to --single_max texts, through one `serving_default` call holding every text.
With the tiny encoder, activations are small beside the process's fixed cost; a real
encoder (--model) shows what one call holding every text costs. Writes
scoring_memory.json and scoring_memory.png.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _texts(n: int) -> list:
  with open(os.path.join(ROOT, "data", "sample", "test.jsonl"), encoding="utf-8") as f:
    pool = [json.loads(line)["text"] for line in f]
  return [pool[i % len(pool)] for i in range(n)]


def child(mode: str, export_dir: str, n: int) -> None:
  texts = _texts(n)
  start = time.perf_counter()
  if mode == "classifier":
    import laco_tf  # pylint: disable=import-outside-toplevel
    scores = laco_tf.Classifier.load(export_dir).predict_proba(texts, show_progress=False)
  else:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    serve = tf.saved_model.load(export_dir).signatures["serving_default"]
    scores = serve(text=tf.constant(texts))["scores"].numpy()
  assert scores.shape[0] == n
  print(json.dumps({"mode": mode, "texts": n, "seconds": time.perf_counter() - start,
                    "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))


def _export(tmp: str) -> str:
  from laco_tf import runner  # pylint: disable=import-outside-toplevel
  from laco_tf.run_settings import RunOptions  # pylint: disable=import-outside-toplevel
  from tests.conftest import (tiny_vocab, write_jsonl_corpus,  # pylint: disable=import-outside-toplevel
                              write_tiny_bert)
  bert = write_tiny_bert(os.path.join(tmp, "bert"), tiny_vocab())
  corpus = write_jsonl_corpus(os.path.join(tmp, "corpus"), {"train": 64, "dev": 16},
                              seed=1, labels={"markets", "rates", "energy", "sports"})
  summary = runner.run(RunOptions(data_dir=corpus, output_dir=os.path.join(tmp, "run"),
                                  bert_model=bert, max_seq_length=64, max_steps=2,
                                  window_size=3, do_train=True, do_export=True))
  return summary["export_dir"]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", default="1000,10000,100000")
  parser.add_argument("--single_max", type=int, default=10000)
  parser.add_argument("--out", default=os.path.join(HERE, "results", "scoring_memory"))
  parser.add_argument("--model", help="an export to score with (default: a tiny one)")
  parser.add_argument("--child", choices=["classifier", "single_call"])
  parser.add_argument("--export_dir")
  parser.add_argument("--n", type=int)
  args = parser.parse_args()
  if args.child:
    child(args.child, args.export_dir, args.n)
    return
  os.makedirs(args.out, exist_ok=True)
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    export_dir = args.model or _export(tmp)
    from laco_tf.serving import export_versions  # pylint: disable=import-outside-toplevel
    export_dir = export_versions.resolve_export(export_dir)
    for n in map(int, args.sizes.split(",")):
      for mode in ("classifier", "single_call"):
        if mode == "single_call" and n > args.single_max:
          continue
        out = subprocess.run([sys.executable, __file__, f"--child={mode}",
                              f"--export_dir={export_dir}", f"--n={n}"], capture_output=True,
                             text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"{mode:12s} {n:7d} texts: peak RSS {rows[-1]['peak_rss_gb']:.2f} GB, "
              f"{rows[-1]['seconds']:.1f} s", flush=True)
  with open(os.path.join(args.out, "scoring_memory.json"), "w", encoding="utf-8") as f:
    json.dump(rows, f, indent=1)
  from laco_tf import plots  # pylint: disable=import-outside-toplevel
  fig, ax = plots.plt.subplots(figsize=(6, 3.5))
  for mode, label in (("classifier", "Classifier.predict_proba (batches of 64)"),
                      ("single_call", "one serving_default call")):
    points = [(r["texts"], r["peak_rss_gb"]) for r in rows if r["mode"] == mode]
    ax.plot(*zip(*points), marker="o", label=label)
  ax.set(xscale="log", xlabel="texts scored", ylabel="peak RSS of the process (GB)",
         title=f"scoring memory, {'tiny random BERT' if not args.model else args.model}")
  ax.legend()
  plots.save_figure(fig, os.path.join(args.out, "scoring_memory.png"))


if __name__ == "__main__":
  main()
