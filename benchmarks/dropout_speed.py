#!/usr/bin/env python3
"""Training-step time with stateless 16-bit dropout masks against Keras-style float draws.

  python benchmarks/dropout_speed.py [--batch_size=16] [--doc_tokens=256] [--num_labels=90]
                                     [--precision=bf16] [--steps=5] [--rounds=3]

One LACO+clcp trainer on the embedded encoder, one synthetic batch. Its dropout layers
(`StatelessDropout`) draw as `tf.nn.dropout` does (one float per element, what Keras'
Dropout runs) while the model has no step counter, and from 16-bit stateless draws
once it has one. The two are timed in alternating rounds of `--steps` steps (after
re-tracing and two warm-up steps each) in one process, so the ratio is a same-run ratio.
"""

import argparse
import json
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

import synthetic  # noqa: E402
from step_time import time_steps  # noqa: E402
from laco_tf.modeling import encoder  # noqa: E402


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=256)
  parser.add_argument("--num_labels", type=int, default=90)
  parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                    "dropout_speed"))
  args = parser.parse_args()
  os.makedirs(args.out, exist_ok=True)
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  trainer, plan = synthetic.build_trainer("laco+clcp", spec, strategy, args.num_labels,
                                          args.batch_size, args.precision)
  batch = synthetic.synthetic_batch([args.doc_tokens] * args.batch_size, args.num_labels,
                                    plan.token_ids, spec.vocab_file, trainer.config.aux)
  seed_source, step = trainer.model.dropout_seed, trainer.step
  times = {"float draws (tf.nn.dropout)": [], "stateless 16-bit draws": []}
  for _ in range(args.rounds):
    for name in times:
      seed_source.step = step if name.startswith("stateless") else None
      trainer.steps.loop_fn = None  # re-trace for this mode
      times[name] += time_steps(trainer, batch, strategy, args.steps)
      print(f"{name:28s} median so far {statistics.median(times[name]):.3f} s/step", flush=True)
  medians = {k: statistics.median(v) for k, v in times.items()}
  old, new = medians.values()
  print(f"speed-up of the stateless draws: {old / new:.3f}x")
  with open(os.path.join(args.out, "dropout_speed.json"), "w") as f:
    json.dump({"args": synthetic.portable_args(args), "seconds": times, "median_seconds": medians,
               "speedup": old / new}, f, indent=1)


if __name__ == "__main__":
  main()
