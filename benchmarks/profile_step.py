#!/usr/bin/env python3
"""Where a training step's time goes: the TensorFlow profiler over a few steps, per op group.

  python benchmarks/profile_step.py [--variants=bert_baseline,laco+clcp] [--precision=fp32]
      [--batch_size=16] [--doc_tokens=160] [--num_labels=90] [--steps=3]
      [--out=benchmarks/results/profile]

Traces `--steps` training steps of each variant (after 2 warm-up steps) on the synthetic
batch of `synthetic.py`, reads the trace's per-op statistics (the profiler's
framework_op_stats tool) and sums each op's self time into groups by its name scope:
encoder matmuls and the rest of BERT, BERT's dropout (random-number generation), CA, the
auxiliary heads, gradient merging and clipping, the two Adam optimisers, and the rest.
Self times of ops that ran in parallel add up, so the groups' sum exceeds wall time;
the shares show where the work is. Writes profile_PRECISION.json under --out and the raw
traces (for TensorBoard's profile plugin) under --trace_dir.
"""

import argparse
import glob
import json
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import tensorflow as tf  # noqa: E402
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin  # noqa: E402

import synthetic  # noqa: E402
from step_time import time_steps  # noqa: E402
from laco_tf.modeling import encoder  # noqa: E402

GROUPS = ("BERT", "BERT dropout", "CA", "auxiliary heads", "classifier and loss",
          "gradient merge and clip", "optimizers", "other")


def group_of(op_type: str, name: str) -> str:
  lowered = name.lower()
  if "cross_attention" in name:
    return "CA"
  if "plcp_head" in name or "clcp_head" in name:
    return "auxiliary heads"
  if "bert_encoder" in name:
    return "BERT dropout" if "dropout" in lowered or op_type == "RandomUniform" else "BERT"
  if "adam" in lowered:
    return "optimizers"
  if ("unique" in lowered or "unsortedsegment" in op_type.lower() or "clip" in lowered or
      "global_norm" in lowered):
    return "gradient merge and clip"
  if "mlc_classifier" in name or "logistic_loss" in lowered or "sigmoid" in lowered:
    return "classifier and loss"
  return "other"


def op_stats(logdir: str) -> list:
  paths = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
  data, ok = _pywrap_profiler_plugin.xspace_to_tools_data(paths, "framework_op_stats", {})
  if not ok:
    raise RuntimeError(f"the profiler could not read {paths}")
  table = json.loads(data)
  table = table[0] if isinstance(table, list) else table
  ids = [c["id"] for c in table["cols"]]
  return [dict(zip(ids, [c["v"] for c in row["c"]])) for row in table["rows"]]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--variants", default="bert_baseline,laco+clcp")
  parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=160)
  parser.add_argument("--num_labels", type=int, default=90)
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--out", default=os.path.join(HERE, "results", "profile"))
  parser.add_argument("--trace_dir", default=os.path.join(HERE, "results", "tmp", "profile"))
  args = parser.parse_args()
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  os.makedirs(args.out, exist_ok=True)
  report = {"args": synthetic.portable_args(args), "variants": {}}
  for variant in args.variants.split(","):
    trainer, plan = synthetic.build_trainer(variant, spec, strategy, args.num_labels,
                                            args.batch_size, args.precision)
    batch = synthetic.synthetic_batch([args.doc_tokens] * args.batch_size, args.num_labels,
                                      plan.token_ids, spec.vocab_file, trainer.config.aux)
    time_steps(trainer, batch, strategy, 0, warmup=2)
    logdir = os.path.join(args.trace_dir, f"{variant}_{args.precision}")
    tf.profiler.experimental.start(logdir)
    wall = time_steps(trainer, batch, strategy, args.steps, warmup=0)
    tf.profiler.experimental.stop()
    seconds = dict.fromkeys(GROUPS, 0.0)
    for row in op_stats(logdir):
      if row["type"] != "IDLE":
        seconds[group_of(row["type"], row["operation"])] += (
            row["total_self_time"] / 1e6 / args.steps)
    total = sum(seconds.values())
    report["variants"][variant] = {"wall_s_per_step": statistics.median(wall),
                                   "self_s_per_step": seconds}
    print(f"\n{variant} ({args.precision}): {statistics.median(wall):.3f} s/step wall, "
          f"{total:.3f} s of op self time")
    for name in GROUPS:
      print(f"  {name:24s} {seconds[name]:.3f} s  {seconds[name] / total:6.1%}")
  with open(os.path.join(args.out, f"profile_{args.precision}.json"), "w",
            encoding="utf-8") as f:
    json.dump(report, f, indent=1)


if __name__ == "__main__":
  main()
