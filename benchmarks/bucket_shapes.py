#!/usr/bin/env python3
"""Memory and step time of bucketed training: a new length each batch, or rounded lengths.

  python benchmarks/bucket_shapes.py [--multiples=1,16] [--steps=80] [--num_labels=87]
                                     [--out=benchmarks/results/bucket_shapes]

Length bucketing gives almost every batch its own length, and oneDNN keeps the kernels it
built for every shape it ran. This trains LACO+clcp (bf16, batch 16, the embedded encoder)
on synthetic batches whose text length is drawn uniformly from 20..256 wordpieces each
step (all documents of a batch alike, as bucketed batches nearly are), with the padded
length rounded up to each multiple (1: none, the code before; 16: what `--length_bucketing`
does now, `train_config.BUCKET_PAD_MULTIPLE`). Each multiple runs in a fresh process on the
same lengths; the RSS is read every 10 steps. Writes bucket_shapes.json and
bucket_shapes.png.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(multiple: int, steps: int, num_labels: int) -> dict:
  """Runs in a child process: RSS every 10 steps and the median step time."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  sys.path.insert(0, os.path.dirname(HERE))
  sys.path.insert(0, HERE)
  import resource  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import synthetic  # pylint: disable=import-outside-toplevel
  from step_time import time_steps  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling import encoder  # pylint: disable=import-outside-toplevel

  def rss_gib():
    with open("/proc/self/statm", encoding="utf-8") as f:
      return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  trainer, plan = synthetic.build_trainer("laco+clcp", spec, strategy, num_labels, 16, "bf16")
  rng = np.random.default_rng(0)
  times, trace, lengths = [], [], set()
  for i in range(steps):
    batch = synthetic.synthetic_batch([int(rng.integers(20, 257))] * 16, num_labels,
                                      plan.token_ids, spec.vocab_file, trainer.config.aux,
                                      seed=i, pad_to_multiple=multiple)
    lengths.add(int(batch["input_ids"].shape[1]))
    times += time_steps(trainer, batch, strategy, 1, warmup=1 if i == 0 else 0)
    if i % 10 == 9:
      trace.append([i + 1, rss_gib()])
      print(f"multiple {multiple}, step {i + 1}: RSS {trace[-1][1]:.2f} GiB, "
            f"{len(lengths)} lengths so far", file=sys.stderr, flush=True)
  return {"multiple": multiple, "rss_gib": trace, "distinct_lengths": len(lengths),
          "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,  # KiB
          "median_step_s": float(np.median(times))}


def draw(result: dict, path: str) -> None:
  """RSS against the step, one line per multiple."""
  sys.path.insert(0, os.path.dirname(HERE))
  from laco_tf import plots  # pylint: disable=import-outside-toplevel
  fig, ax = plots.plt.subplots(figsize=(5.5, 4))
  for r in result["runs"]:
    ax.plot([p[0] for p in r["rss_gib"]], [p[1] for p in r["rss_gib"]], marker="o",
            label=f"lengths rounded to a multiple of {r['multiple']} "
                  f"({r['distinct_lengths']} shapes)")
  ax.set(xlabel="training step", ylabel="RSS (GiB)",
         title="LACO+clcp bf16, batch 16, a random length per batch")
  ax.legend(fontsize=8)
  fig.tight_layout()
  plots.save_figure(fig, path)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--multiples", default="1,16")
  parser.add_argument("--steps", type=int, default=80)
  parser.add_argument("--num_labels", type=int, default=87)
  parser.add_argument("--out", default=os.path.join(HERE, "results", "bucket_shapes"))
  parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child is not None:
    print(json.dumps(measure(args.child, args.steps, args.num_labels)))
    return
  os.makedirs(args.out, exist_ok=True)
  runs = []
  for multiple in map(int, args.multiples.split(",")):
    out = subprocess.run([sys.executable, __file__, f"--child={multiple}",
                          f"--steps={args.steps}", f"--num_labels={args.num_labels}"],
                         stdout=subprocess.PIPE, text=True, check=True)
    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    r = runs[-1]
    print(f"multiple {multiple:3d}: {r['distinct_lengths']} lengths, peak RSS "
          f"{r['peak_rss_gib']:.2f} GiB, median step {r['median_step_s']:.2f} s", flush=True)
  result = {"steps": args.steps, "num_labels": args.num_labels, "batch_size": 16,
            "precision": "bf16", "runs": runs}
  with open(os.path.join(args.out, "bucket_shapes.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  draw(result, os.path.join(args.out, "bucket_shapes.png"))


if __name__ == "__main__":
  main()
