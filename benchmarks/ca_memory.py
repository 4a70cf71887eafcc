#!/usr/bin/env python3
"""Peak memory of one CA forward + backward pass against the number of labels.

  python benchmarks/ca_memory.py [--labels=50,100,200,300,400] [--batch_size=32]
                                 [--words=100] [--out=benchmarks/results/ca_memory]

Compares LACO-TF's CA (`max_conv_scores`: filters in chunks with a running maximum, a
backward pass through each word's winning window) with the plain formulation it
replaced (Conv2D with n filters -> [batch, words, n, n] -> max, autodiff backward), on
the same M and weights. Each (formulation, label count) runs in a fresh process; the
memory is that process's peak RSS growth over the pass (ru_maxrss after the pass minus
the RSS before it). Writes ca_memory.json and ca_memory.png.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def measure(impl: str, labels: int, batch: int, words: int) -> float:
  """Runs in a child process: GB of peak RSS growth over one forward + backward pass."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  sys.path.insert(0, os.path.dirname(HERE))
  import resource  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling.layers import cross_attention  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  m = tf.constant(rng.standard_normal((batch, words, labels)).astype(np.float32))
  kernel = tf.Variable(rng.standard_normal((10, 10, 1, labels)).astype(np.float32) * 0.1)
  bias = tf.Variable(np.zeros(labels, np.float32))

  def plain(m):
    out = tf.nn.relu(tf.nn.conv2d(m[..., tf.newaxis], kernel, 1, "SAME") + bias)
    return tf.reduce_max(out, axis=[2, 3])

  def chunked(m):
    return cross_attention.max_conv_scores(m, kernel, bias)

  fn = plain if impl == "plain" else chunked

  @tf.function
  def step(m):
    with tf.GradientTape() as tape:
      tape.watch(m)
      loss = tf.reduce_sum(fn(m))
    return tape.gradient(loss, [m, kernel, bias])

  with open("/proc/self/statm", encoding="utf-8") as f:
    before = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
  [g.numpy() for g in step(m)]
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  return (peak - before) / 2**30


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--labels", default="50,100,200,300,400")
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--words", type=int, default=100)
  parser.add_argument("--out", default=os.path.join(HERE, "results", "ca_memory"))
  parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.child:
    print(measure(args.child[0], int(args.child[1]), args.batch_size, args.words))
    return
  os.makedirs(args.out, exist_ok=True)
  result = {"batch_size": args.batch_size, "words": args.words, "gb": {}}
  for impl in ("plain", "chunked"):
    result["gb"][impl] = {}
    for n in map(int, args.labels.split(",")):
      out = subprocess.run([sys.executable, __file__, "--child", impl, str(n),
                            f"--batch_size={args.batch_size}", f"--words={args.words}"],
                           capture_output=True, text=True, check=False)
      if out.returncode != 0:
        print(f"{impl} {n} labels: failed ({out.stderr.strip().splitlines()[-1:]})")
        continue
      gb = float(out.stdout.strip().splitlines()[-1])
      result["gb"][impl][n] = gb
      print(f"{impl:8s} {n:4d} labels: peak +{gb:.2f} GB", flush=True)
  with open(os.path.join(args.out, "ca_memory.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  sys.path.insert(0, os.path.dirname(HERE))
  from laco_tf import plots  # pylint: disable=import-outside-toplevel
  fig, ax = plots.plt.subplots(figsize=(5.5, 4))
  for impl, label in (("plain", "Conv2D, then max (before)"),
                      ("chunked", "chunked running max (now)")):
    points = sorted(result["gb"][impl].items())
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
  ax.set(xlabel="labels n", ylabel="peak memory of CA forward+backward (GB)",
         title=f"CA at batch {args.batch_size} x {args.words} words")
  ax.legend()
  fig.tight_layout()
  plots.save_figure(fig, os.path.join(args.out, "ca_memory.png"))


if __name__ == "__main__":
  main()
