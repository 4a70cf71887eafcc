#!/usr/bin/env python3
"""What `--ema_decay`'s weight average costs a training step (CPU or GPU).

  python benchmarks/weight_average_cost.py [--batch_size=16] [--doc_tokens=256]
      [--num_labels=87] [--precision=bf16] [--steps=7] [--repeats=20]
      [--out=benchmarks/results/weight_average]

Builds LACO+clcp on all-MiniLM-L6-v2 with the default --ema_decay (`synthetic.build_trainer`),
times full training steps on one synthetic batch of the held-out protocol's shape (each
step updates the average, as training does), then times the average's update alone on the
same weights (`--repeats` calls) and one swap pair (what each dev evaluation adds).
Prints medians and the update's share of a step, measured in the same process, and
writes JSON.
"""

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

import synthetic  # noqa: E402
from step_time import time_steps  # noqa: E402
from laco_tf.modeling import encoder  # noqa: E402
from laco_tf.run_settings import RunOptions  # noqa: E402


def _median_seconds(fn, repeats: int, probe) -> float:
  """Median seconds of `fn()`; reading `probe` afterwards waits for a GPU to finish."""
  fn()  # traces
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    probe.numpy()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=256)
  parser.add_argument("--num_labels", type=int, default=87)
  parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "fp16"])
  parser.add_argument("--steps", type=int, default=7)
  parser.add_argument("--repeats", type=int, default=20)
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                    "weight_average"))
  args = parser.parse_args()
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  trainer, plan = synthetic.build_trainer("laco+clcp", spec, strategy, args.num_labels,
                                          args.batch_size, args.precision,
                                          ema_decay=RunOptions.ema_decay)
  batch = synthetic.synthetic_batch([args.doc_tokens] * args.batch_size, args.num_labels,
                                    plan.token_ids, spec.vocab_file, trainer.config.aux)
  step = statistics.median(time_steps(trainer, batch, strategy, args.steps))
  # pylint: disable=protected-access
  variables, average = trainer.steps.averaged, trainer.steps.average
  update = tf.function(lambda: average.update(variables, trainer.step))
  probe = average.averages[-1]  # updated and swapped last
  update_s = _median_seconds(update, args.repeats, probe)
  swap_s = _median_seconds(lambda: (average.swap(variables), average.swap(variables)),
                           args.repeats, probe)
  weights = sum(int(tf.size(v)) for v in variables)
  result = {"args": synthetic.portable_args(args),
            "device": tf.config.list_logical_devices()[0].device_type,
            "averaged_weights": weights, "step_seconds": step, "update_seconds": update_s,
            "update_share_of_step": update_s / step, "swap_pair_seconds": swap_s}
  print(f"training step (with the update) {step:.3f} s; the update alone {update_s * 1e3:.1f} "
        f"ms ({100 * update_s / step:.1f}% of the step) over {weights:,} weights; one swap "
        f"and back {swap_s * 1e3:.1f} ms")
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, "weight_average_cost.json")
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  os.replace(path + ".tmp", path)


if __name__ == "__main__":
  main()
