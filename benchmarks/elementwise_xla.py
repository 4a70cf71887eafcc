#!/usr/bin/env python3
"""What XLA saves on the training step's elementwise chains: op by op against one compiled loop.

  python benchmarks/elementwise_xla.py [--batch_size=16] [--doc_tokens=256] [--num_labels=87]
      [--precisions=bf16,fp32] [--steps=7] [--out=benchmarks/results/elementwise_xla]

Two chains of elementwise ops run over the biggest tensors of a training step: BERT's GELU
([batch x positions, intermediate], forward and backward) and the dropout of BERT's
attention weights ([batch, heads, positions, positions]). Session 16's code ran each op as
its own TensorFlow kernel, as a run with unbucketed lengths still does
(`exact_gelu_op_by_op`, `apply_dropout_mask(compiled=False)`); with bucketed lengths (the
default) each chain is one XLA-compiled function. Each measurement alternates the two call
by call (same load), medians of --steps calls after warm-up (CPU or GPU):
  pieces    each chain alone, forward + backward, at the step's shapes, and the largest
            difference between the two results.
  training  full LACO+clcp training steps on all-MiniLM-L6-v2 (`synthetic.py`'s batch):
            the model with op-by-op chains against the model with compiled ones (the
            `compiled_chains` argument of LacoModel), the same initial weights and batch,
            and the first step's loss of each.
Writes elementwise_xla.json and elementwise_xla.png under --out.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import synthetic  # noqa: E402
from gelu_speed import alternate  # noqa: E402
from throughput import peak_rss_gb  # noqa: E402
from laco_tf import plots  # noqa: E402
from laco_tf.modeling import encoder, gelu, precision as precision_lib  # noqa: E402
from laco_tf.modeling.layers import stateless_dropout  # noqa: E402

KINDS = ("op by op (session 16)", "XLA-compiled chains")
OP_BY_OP = {"gelu": gelu.exact_gelu_op_by_op,
            "dropout": lambda x, keep, scale: stateless_dropout.apply_dropout_mask(
                x, keep, scale, compiled=False)}
COMPILED = {"gelu": gelu.exact_gelu, "dropout": stateless_dropout.apply_dropout_mask}


def _forward_backward(fn, x, *extra):
  @tf.function
  def run():
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = fn(x, *extra)
    return y, tape.gradient(y, x, output_gradients=tf.ones_like(y) * tf.cast(0.5, y.dtype))
  return run


def section_pieces(args, spec, positions):
  rows = []
  heads = spec.config_value("num_attention_heads")
  for precision in args.precisions:
    dtype = tf.bfloat16 if precision == "bf16" else tf.float32
    shapes = {"gelu": [args.batch_size * positions, spec.config_value("intermediate_size")],
              "dropout": [args.batch_size, heads, positions, positions]}
    for piece, shape in shapes.items():
      x = tf.cast(tf.random.stateless_normal(shape, [0, 1]) * 2, dtype)
      extra = ()
      if piece == "dropout":
        extra = (tf.random.stateless_uniform(shape, [1, 2]) >= 0.1, tf.constant(1 / 0.9, dtype))
      runs = {k: _forward_backward(fns[piece], x, *extra)
              for k, fns in zip(KINDS, (OP_BY_OP, COMPILED))}
      med = alternate({k: (lambda f=f: f()[1].numpy()) for k, f in runs.items()}, args.steps)
      outs = {k: [t.numpy().astype(np.float64) for t in f()] for k, f in runs.items()}
      diff = [float(np.abs(a - b).max()) for a, b in zip(outs[KINDS[0]], outs[KINDS[1]])]
      row = {"precision": precision, "piece": piece, "shape": shape, **med,
             "speedup": med[KINDS[0]] / med[KINDS[1]], "max_difference_value": diff[0],
             "max_difference_gradient": diff[1]}
      rows.append(row)
      print(f"{piece} {precision} {shape} forward + backward: {med[KINDS[0]] * 1e3:.1f} ms "
            f"-> {med[KINDS[1]] * 1e3:.1f} ms ({row['speedup']:.2f}x); largest difference "
            f"{diff[0]:.1e} (value), {diff[1]:.1e} (gradient)", flush=True)
  return rows


def section_training(args, spec, strategy):
  rows = []
  for precision in args.precisions:
    trainers, iterators, first_loss = {}, {}, {}
    for kind, compiled in zip(KINDS, (False, True)):
      trainers[kind], plan = synthetic.build_trainer("laco+clcp", spec, strategy,
                                                     args.num_labels, args.batch_size, precision,
                                                     compiled_chains=compiled)
      batch = synthetic.synthetic_batch([args.doc_tokens] * args.batch_size, args.num_labels,
                                        plan.token_ids, spec.vocab_file,
                                        trainers[kind].config.aux)
      dataset = tf.data.Dataset.from_tensors(batch).repeat()
      iterators[kind] = iter(strategy.experimental_distribute_dataset(dataset))
        first_loss[kind] = float(
          trainers[kind].steps.run(iterators[kind], 1)["total"].numpy().ravel()[0])
    med = alternate({k: (lambda t=trainers[k], it=iterators[k]: t.steps.run(it, 1)[
        "total"].numpy()) for k in KINDS}, args.steps)
    row = {"precision": precision, **med, "speedup": med[KINDS[0]] / med[KINDS[1]],
           "first_step_loss": first_loss}
    rows.append(row)
    print(f"training step LACO+clcp {precision}, batch {args.batch_size} x "
          f"{args.doc_tokens} + {args.num_labels} labels: {med[KINDS[0]]:.3f} s -> "
          f"{med[KINDS[1]]:.3f} s ({row['speedup']:.2f}x); first-step loss "
          f"{first_loss[KINDS[0]]:.6f} / {first_loss[KINDS[1]]:.6f}", flush=True)
  return rows


def draw(report, path):
  fig, axes = plots.plt.subplots(1, 2, figsize=(11, 4))
  panels = [("each chain alone, forward + backward",
             [f"{r['piece']} {r['precision']}" for r in report["pieces"]], report["pieces"]),
            ("LACO+clcp training step", [r["precision"] for r in report["training"]],
             report["training"])]
  for ax, (title, names, rows) in zip(axes, panels):
    ax.bar(range(len(rows)), [r["speedup"] for r in rows])
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xticks(range(len(rows)), names, fontsize=8)
    ax.set(title=title, ylabel=f"speed-up of {KINDS[1]}\nover {KINDS[0]}")
  fig.tight_layout()
  plots.save_figure(fig, path)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=256)
  parser.add_argument("--num_labels", type=int, default=87)
  parser.add_argument("--precisions", default="bf16,fp32")
  parser.add_argument("--steps", type=int, default=7)
  parser.add_argument("--sections", default="pieces,training")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "elementwise_xla"))
  args = parser.parse_args()
  args.precisions = [precision_lib.resolve(p) for p in args.precisions.split(",")]
  os.makedirs(args.out, exist_ok=True)
  spec = encoder.resolve_encoder("minilm")
  report = {"args": synthetic.portable_args(args), "date": time.strftime("%Y-%m-%d"),
            "device": tf.config.list_logical_devices()[-1].device_type,
            "pieces": [], "training": []}
  sections = args.sections.split(",")
  if "pieces" in sections:
    report["pieces"] = section_pieces(args, spec, args.doc_tokens + 3 + args.num_labels)
  if "training" in sections:
    report["training"] = section_training(args, spec, tf.distribute.get_strategy())
  report["peak_rss_gb"] = peak_rss_gb()
  with open(os.path.join(args.out, "elementwise_xla.json"), "w", encoding="utf-8") as f:
    json.dump(report, f, indent=1)
  draw(report, os.path.join(args.out, "elementwise_xla.png"))
  print(f"peak RSS {report['peak_rss_gb']:.2f} GB")


if __name__ == "__main__":
  main()
