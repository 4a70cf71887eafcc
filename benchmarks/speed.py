#!/usr/bin/env python3
"""Training-step speed: one harness, a registry of comparisons, each timed in alternating rounds.

  python benchmarks/speed.py --compare=NAME [--batch_size=16] [--doc_tokens=256]
      [--num_labels=90[,N...]] [--label_slots=64] [--variants=bert_baseline,laco+clcp]
      [--precisions=bf16] [--steps=5] [--rounds=3] [--reuters_dir=PATH]
      [--peer_python=PYTHON] [--other_code=CHECKOUT] [--out=benchmarks/results/speed/NAME]

Every comparison builds its configurations on the embedded all-MiniLM-L6-v2 encoder (each
a trainer and its synthetic batches, `lib.py`), then times full training steps (forward,
backward, both Adam updates) of each configuration in turn, round after round, so that a
slow spell of the machine falls on all of them: medians over every round, and the ratio
of each configuration to the first within each round. With --peer_python (a Python with
torch and transformers), each round also times the PyTorch peer (`peer.py`) in its own
process at the same batch and text length. With --other_code (a checkout of another commit,
e.g. `git worktree add /tmp/before COMMIT`), each round runs the comparison once with this
checkout's harness and once with that one's, each in a fresh process, in alternating order:
the two codes side by side in one run. Writes speed.json and speed.png under --out. The comparisons (--compare):
"""

import argparse
import json
import os
import statistics
import sys

import lib

import tensorflow as tf  # noqa: E402  (after lib: it quiets TensorFlow's logging)

from laco_tf.modeling import encoder  # noqa: E402
from laco_tf.run_settings import RunOptions  # noqa: E402
from laco_tf.training.train_config import BUCKET_PAD_MULTIPLE  # noqa: E402

COMPARISONS = {}


class Setup:
  """One configuration: a trainer, its batches, and what to do before each timing round."""

  def __init__(self, trainer, batches, before=None, docs_per_step=None):
    self.trainer, self.batches, self.before = trainer, batches, before
    self.docs_per_step = docs_per_step or int(batches[0]["labels"].shape[0])


def comparison(fn):
  """Registers `fn(args, spec, strategy) -> {name: Setup}` under its name; its docstring is
  the comparison's help."""
  COMPARISONS[fn.__name__] = fn
  return fn


def _setup(args, spec, strategy, variant, n, precision=None, options=None, config=None,
           lengths=None, pad=1):
  trainer, plan = lib.build_trainer(variant, spec, strategy, n, args.batch_size,
                                    precision or args.precisions[0], options, config)
  batch = lib.synthetic_batch(lengths or [args.doc_tokens] * args.batch_size, n,
                              plan.token_ids, spec.vocab_file, trainer.config.aux,
                              pad_to_multiple=pad)
  return Setup(trainer, [batch])


@comparison
def variants(args, spec, strategy):
  """each --variants model at each --num_labels (with --label_slots for the JE ones)."""
  return {f"{v} n={n}": _setup(args, spec, strategy, v, n,
                               options={"label_slots": args.label_slots})
          for n in args.num_labels for v in args.variants}


@comparison
def label_slots(args, spec, strategy):
  """at each --num_labels: the BERT baseline, LACO+clcp with every label in every sequence
  (while 512 positions hold them) and LACO+clcp with --label_slots slots, also with the
  labels joining at each --label_join_layers layer; then the BERT baseline reading
  --doc_tokens + K + 1 wordpieces, as many positions as the slots' sequence: what a plain
  encoder pays for that length."""
  setups = {}
  for n in args.num_labels:
    setups[f"BERT baseline n={n}"] = _setup(args, spec, strategy, "bert_baseline", n)
    if args.doc_tokens + n + 3 <= spec.config_value("max_position_embeddings"):
      setups[f"LACO+clcp full JE n={n}"] = _setup(args, spec, strategy, "laco+clcp", n)
    for join in [0] + args.label_join_layers:
      setups[f"LACO+clcp {args.label_slots} slots{f' from layer {join}' if join else ''} n={n}"] = (
          _setup(args, spec, strategy, "laco+clcp", n,
                 options={"label_slots": args.label_slots, "label_join_layer": join}))
  positions = args.doc_tokens + args.label_slots + 1
  setups[f"BERT baseline, {positions} wordpieces n={args.num_labels[0]}"] = _setup(
      args, spec, strategy, "bert_baseline", args.num_labels[0],
      lengths=[positions] * args.batch_size)
  return setups


@comparison
def precision(args, spec, strategy):
  """the BERT baseline and LACO+clcp at each --precisions, with and without whole-step XLA
  (--jit_compile); XLA last, as its compilations load the machine."""
  return {f"{v} {p}{' XLA' if xla else ''}": _setup(
      args, spec, strategy, v, args.num_labels[0], p, options={"jit_compile": xla})
          for xla in (False, True) for p in args.precisions
          for v in ("bert_baseline", "laco+clcp")}


@comparison
def chains(args, spec, strategy):
  """LACO+clcp with BERT's GELU and dropout masking op by op (TensorFlow's kernels, what an
  unbucketed run does) against each chain as one XLA-compiled function (bucketed runs)."""
  n = args.num_labels[0]
  return {"op by op": _setup(args, spec, strategy, "laco+clcp", n,
                             options={"length_bucketing": False}),
          "compiled chains": _setup(args, spec, strategy, "laco+clcp", n)}


@comparison
def dropout(args, spec, strategy):
  """LACO+clcp's dropout drawing one float per element (what Keras' Dropout and
  `tf.nn.dropout` run) against 16-bit stateless draws keyed by the step (the default)."""
  base = _setup(args, spec, strategy, "laco+clcp", args.num_labels[0])
  seed_source, step = base.trainer.model.dropout_seed, base.trainer.step

  def mode(stateless):
    def before():
      seed_source.step = step if stateless else None
      base.trainer.steps.loop_fn = None  # traced again for this mode
    return before
  return {"float draws": Setup(base.trainer, base.batches, mode(False)),
          "stateless 16-bit draws": Setup(base.trainer, base.batches, mode(True))}


@comparison
def weight_average(args, spec, strategy):
  """LACO+clcp without a weight average against the default --ema_decay (each step updates
  the average)."""
  n = args.num_labels[0]
  return {"no average": _setup(args, spec, strategy, "laco+clcp", n),
          f"--ema_decay={RunOptions.ema_decay}": _setup(
              args, spec, strategy, "laco+clcp", n, config={"ema_decay": RunOptions.ema_decay})}


@comparison
def microbatches(args, spec, strategy):
  """LACO+clcp on whole batches against micro-batches of 8 and 4 (--microbatch_size: the
  same batch and update, each micro-batch padded to its own longest document); the batch's
  lengths are real texts' (--reuters_dir, else the bundled sample)."""
  lengths = _text_lengths(args, spec)[:args.batch_size].tolist()
  return {f"{'whole batches' if k == 0 else f'micro-batches of {k}'}": _setup(
      args, spec, strategy, "laco+clcp", args.num_labels[0], config={"microbatch_size": k},
      lengths=lengths) for k in (0, 8, 4)}


@comparison
def bucketing(args, spec, strategy):
  """LACO+clcp on batches of real texts' lengths (--reuters_dir, else the bundled sample)
  in random order against length-bucketed order (`pipeline.bucketed_order`, lengths rounded
  up to multiples of 16, compiled chains): --steps batches of each, documents/s."""
  from laco_tf.data import pipeline  # pylint: disable=import-outside-toplevel
  lengths, b = _text_lengths(args, spec), args.batch_size
  orders = {"random order": lib.np.random.default_rng(0).permutation(len(lengths)),
            "length-bucketed": pipeline.bucketed_order(lengths, b, seed=0, epoch=0)}
  setups, rng = {}, lib.np.random.default_rng(1)
  for name, order in orders.items():
    full = [lengths[order[i:i + b]] for i in range(0, len(order) - b + 1, b)]
    picked = [full[i] for i in rng.choice(len(full), args.steps, replace=False)]
    bucketed = name == "length-bucketed"
    trainer, plan = lib.build_trainer("laco+clcp", spec, strategy, args.num_labels[0], b,
                                      args.precisions[0], {"length_bucketing": bucketed})
    batches = [lib.synthetic_batch([max(1, int(x)) for x in p], args.num_labels[0],
                                   plan.token_ids, spec.vocab_file, trainer.config.aux, seed=i,
                                   pad_to_multiple=BUCKET_PAD_MULTIPLE if bucketed else 1)
               for i, p in enumerate(picked)]
    real = sum(int(p.sum()) for p in full)
    padded = sum(int(p.max()) * len(p) for p in full)
    print(f"{name}: padding {1 - real / padded:.1%} of document positions over the epoch",
          file=sys.stderr)
    setups[name] = Setup(trainer, batches)
  return setups


def _text_lengths(args, spec):
  return lib.wordpiece_lengths(lib.load_texts(args.reuters_dir), spec, args.doc_tokens)


def _peer_seconds(args, spec) -> list:
  """The PyTorch peer's step times at the same batch, in its own process (`peer.py`)."""
  import tempfile  # pylint: disable=import-outside-toplevel
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "peer.json")
    lib.run_child([args.peer_python, os.path.join(lib.HERE, "peer.py"),
                   f"--model_dir={os.path.dirname(spec.weights)}", "--precisions=fp32",
                   f"--batch_size={args.batch_size}", f"--positions={args.doc_tokens + 2}",
                   f"--num_labels={args.num_labels[0]}", f"--steps={args.steps}",
                   f"--out={out}"], "the peer", parse_stdout=False)
    with open(out, encoding="utf-8") as f:
      return json.load(f)["rows"][0]["times_s"]


def _child_argv(args) -> list:
  """This comparison's arguments, for the same harness in another checkout."""
  return [f"--compare={args.compare}", f"--batch_size={args.batch_size}",
          f"--doc_tokens={args.doc_tokens}", f"--num_labels={','.join(map(str, args.num_labels))}",
          f"--label_slots={args.label_slots}", f"--variants={','.join(args.variants)}",
          f"--precisions={','.join(args.precisions)}", f"--steps={args.steps}",
          *([f"--reuters_dir={args.reuters_dir}"] if args.reuters_dir else [])]


def time_rounds(args, setups, strategy, spec) -> list:
  """[{name: [seconds of each step]}] per round, the configurations in turn."""
  rounds = []
  for r in range(args.rounds):
    now = {}
    for name, s in setups.items():
      if s.before:
        s.before()
      now[name] = lib.time_steps(s.trainer, s.batches, strategy, args.steps,
                                 warmup=2 if r == 0 or s.before else 1)
    if args.peer_python:
      now["PyTorch peer (BertModel, fp32)"] = _peer_seconds(args, spec)
    rounds.append(now)
    print(f"round {r + 1}: " + ", ".join(f"{k} {statistics.median(v):.3f} s"
                                         for k, v in now.items()), file=sys.stderr, flush=True)
  return rounds


def report_and_draw(args, setups, rounds) -> dict:
  medians, ratios = lib.medians_and_ratios(rounds)
  docs = {k: (setups[k].docs_per_step if k in setups else args.batch_size) for k in medians}
  for name, med in medians.items():
    print(f"{name:40s} median {med:.3f} s/step, {docs[name] / med:.1f} docs/s; ratio to the "
          f"first per round: {', '.join(f'{x:.2f}' for x in ratios[name])}")
  report = {"compare": args.compare, "args": lib.portable_args(args),
            "median_seconds": medians, "docs_per_s": {k: docs[k] / v for k, v in medians.items()},
            "ratio_to_first_per_round": ratios, "seconds": rounds,
            "peak_rss_gb": lib.peak_rss_gb()}
  lib.save_report(report, args.out, "speed")
  fig, ax = lib.plots.plt.subplots(figsize=(1.6 + 1.3 * len(medians), 4))
  ax.bar(range(len(medians)), list(medians.values()))
  for i, name in enumerate(medians):
    ax.annotate(f"{statistics.median(ratios[name]):.2f}x", (i, medians[name]), ha="center")
  ax.set_xticks(range(len(medians)), list(medians), fontsize=7, rotation=20)
  ax.set(ylabel="seconds per training step (median)",
         title=f"{args.compare}: batch {args.batch_size} x {args.doc_tokens} wordpieces, "
               f"{args.precisions[0]}, {args.rounds} rounds of {args.steps} steps")
  fig.tight_layout()
  lib.plots.save_figure(fig, os.path.join(args.out, "speed.png"))
  return report


def parse_args(argv=None):
  parser = argparse.ArgumentParser(
      description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="\n".join(f"  {k:15s} {' '.join(f.__doc__.split())}" for k, f in COMPARISONS.items()))
  parser.add_argument("--compare", required=True, choices=sorted(COMPARISONS))
  parser.add_argument("--batch_size", type=int, default=16)
  parser.add_argument("--doc_tokens", type=int, default=256)
  parser.add_argument("--num_labels", default="90", help="label count(s), comma-separated")
  parser.add_argument("--label_slots", type=int, default=0, help="--label_slots of JE models")
  parser.add_argument("--label_join_layers", default="",
                      help="--compare=label_slots: also these --label_join_layer values")
  parser.add_argument("--variants", default="bert_baseline,laco+clcp",
                      help="for --compare=variants: comma-separated " + ", ".join(lib.VARIANTS))
  parser.add_argument("--precisions", default="bf16",
                      help="fp32, bf16, fp16; comma-separated for --compare=precision, else the "
                           "first is used")
  parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration "
                      "and round (--compare=bucketing: batches per kind)")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--reuters_dir", help="NLTK Reuters for real text lengths")
  parser.add_argument("--peer_python", help="a Python with torch and transformers")
  parser.add_argument("--other_code", help="a checkout of another commit to time beside this "
                      "one, round by round")
  parser.add_argument("--out", help="default benchmarks/results/speed/COMPARE")
  args = parser.parse_args(argv)
  try:
    args.num_labels = [int(n) for n in args.num_labels.split(",")]
    args.label_join_layers = [int(j) for j in args.label_join_layers.split(",") if j]
  except ValueError:
    parser.error("--num_labels, --label_join_layers: expected comma-separated integers")
  args.variants, args.precisions = args.variants.split(","), args.precisions.split(",")
  if min(args.num_labels + [args.steps, args.rounds]) < 1:
    parser.error("--num_labels, --steps and --rounds must be positive")
  if args.compare in ("label_slots",) and args.label_slots < 1:
    parser.error("--compare=label_slots needs --label_slots=K")
  args.out = args.out or os.path.join(lib.RESULTS, "speed", args.compare)
  if args.other_code:
    if args.peer_python:
      parser.error("--other_code times two codes; time the peer (--peer_python) in a run of its own")
    lib.other_code_label(args.other_code)  # refuses a folder that is not a checkout, now
  return args


def main(argv=None):
  args = parse_args(argv)
  spec = encoder.resolve_encoder("minilm")
  strategy = tf.distribute.get_strategy()
  if args.other_code:
    report_and_draw(args, {}, lib.alternate_checkouts(args.other_code, "speed.py",
                                                      _child_argv(args), args.rounds, "speed"))
    return
  setups = COMPARISONS[args.compare](args, spec, strategy)
  report_and_draw(args, setups, time_rounds(args, setups, strategy, spec))


if __name__ == "__main__":
  main()
