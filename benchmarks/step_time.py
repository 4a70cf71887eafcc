#!/usr/bin/env python3
"""Training-step time of each LACO variant on the embedded encoder (CPU or GPU).

  python benchmarks/step_time.py [--batch_size=16] [--doc_tokens=160] [--num_labels=90[,N...]]
                                 [--steps=6] [--rounds=1] [--precision=fp32] [--variants=laco,...]
                                 [--out=benchmarks/results]

Builds every variant (BERT baseline, LACO, +PLCP, +CLCP, both) on all-MiniLM-L6-v2,
feeds each the same synthetic batch (`synthetic.py`) and times full training steps
(forward, backward, both Adam updates) after two warm-up steps; with --rounds, the
configurations (variant x label count) take turns. Prints the median per configuration,
its ratio to base LACO (else the first configuration) and that ratio in each round, and
writes JSON and a PNG bar chart. `throughput.py` compares precisions, XLA and bucketing.
"""

import argparse
import json
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tensorflow as tf  # noqa: E402

import synthetic  # noqa: E402
from laco_tf.modeling import encoder
from laco_tf import plots  # noqa: E402


def time_steps(trainer, batch, strategy, steps: int, warmup: int = 2) -> list:
  """Seconds of each of `steps` training steps on `batch`, after `warmup` steps.

  The batch's dimensions are declared unknown, as the pipeline's padded batches are, so
  batches of other lengths reuse the traced step instead of tracing a new one.
  """
  signature = {k: tf.TensorSpec([None] * len(v.shape), v.dtype) for k, v in batch.items()}
  dataset = tf.data.Dataset.from_generator(lambda: iter([batch] * (steps + warmup)),
                                           output_signature=signature)
  dist = strategy.experimental_distribute_dataset(dataset)
  it = iter(dist)
  times = []
  for step in range(steps + warmup):
    start = time.perf_counter()
    trainer.steps.run(it, 1)["total"].numpy()
    if step >= warmup:
      times.append(time.perf_counter() - start)
  return times


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=160)
  parser.add_argument("--num_labels", default="90",
                      help="label count, or comma-separated counts: each variant at each")
  parser.add_argument("--label_slots", type=int, default=0,
                      help="--label_slots of the LACO variants (0: every label)")
  parser.add_argument("--steps", type=int, default=6, help="timed steps per round")
  parser.add_argument("--rounds", type=int, default=1,
                      help="times each configuration in turn this many rounds; medians over "
                      "every round, ratios per round")
  parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
  parser.add_argument("--variants", default=",".join(synthetic.VARIANTS),
                      help="comma-separated subset of " + ", ".join(synthetic.VARIANTS))
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
  args = parser.parse_args()
  counts = args.num_labels.split(",")
  if not all(c.isdigit() and int(c) > 0 for c in counts) or args.rounds < 1:
    parser.error(f"--num_labels={args.num_labels} --rounds={args.rounds}: expected positive "
                 "integers (label counts separated by commas)")
  os.makedirs(args.out, exist_ok=True)
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  built = {}
  for n in map(int, counts):
    for name in args.variants.split(","):
      trainer, plan = synthetic.build_trainer(name, spec, strategy, n, args.batch_size,
                                              args.precision, label_slots=args.label_slots)
      batch = synthetic.synthetic_batch([args.doc_tokens] * args.batch_size, n,
                                        plan.token_ids, spec.vocab_file, trainer.config.aux)
      built[name if len(counts) == 1 else f"{name} n={n}"] = (trainer, batch)
  # Rounds alternate the configurations, so that a slow spell of the machine falls on all.
  times = {key: [] for key in built}
  round_ratios = {key: [] for key in built}
  for r in range(args.rounds):
    medians_now = {}
    for key, (trainer, batch) in built.items():
      now = time_steps(trainer, batch, strategy, args.steps, warmup=2 if r == 0 else 1)
      times[key] += now
      medians_now[key] = statistics.median(now)
    first = next(iter(medians_now.values()))
    for key, value in medians_now.items():
      round_ratios[key].append(value / first)
    print(f"round {r + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in medians_now.items()),
          file=sys.stderr, flush=True)
  medians = {key: statistics.median(t) for key, t in times.items()}
  for key, t in times.items():
    print(f"{key:20s} median {medians[key]:.3f} s/step over {len(t)} steps "
          f"(min {min(t):.3f}, max {max(t):.3f}); ratio to the first configuration per "
          f"round: {', '.join(f'{x:.2f}' for x in round_ratios[key])}", flush=True)
  base = medians.get("laco", next(iter(medians.values())))
  print("\nratio to the first of laco / the configurations: " +
        ", ".join(f"{k} {v / base:.2f}" for k, v in medians.items()))
  result = {"args": synthetic.portable_args(args), "device": tf.config.list_logical_devices()[0].device_type,
            "median_seconds": medians, "ratio_to_laco": {k: v / base for k, v in medians.items()},
            "ratio_to_first_per_round": round_ratios}
  result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
  with open(os.path.join(args.out, "step_time.json"), "w") as f:
    json.dump(result, f, indent=1)
  fig, ax = plots.plt.subplots(figsize=(7, 3.5))
  ax.bar(list(medians), list(medians.values()))
  ax.set(ylabel="seconds per training step (median)",
         title=f"batch {args.batch_size} x {args.doc_tokens} doc tokens + "
               f"{args.num_labels} labels" +
               (f" in {args.label_slots} slots" if args.label_slots else "") +
               f", {args.precision}, all-MiniLM-L6-v2")
  fig.tight_layout()
  plots.save_figure(fig, os.path.join(args.out, "step_time.png"))


if __name__ == "__main__":
  main()
