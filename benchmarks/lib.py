"""What the benchmark harnesses share: synthetic batches and trainers, timing, fresh-process
measurements and saving. A library, not a script: `speed.py`, `memory.py` and
`serving.py` import it; no harness imports another.

A synthetic batch holds random wordpieces (ids 2000-29000 of the MiniLM vocabulary) of the
given per-document lengths, a random multi-hot label set per document (about 3 labels,
label 0 always on) and the pipeline's own PLCP/CLCP and label-slot draws, packed by
`pack_joint_input` as TFRecord conversion packs real text.
"""

import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from laco_tf import plots  # noqa: E402  pylint: disable=unused-import (re-exported)
from laco_tf.data import corpus_splits, input_packing, pipeline, samplers, tokenization  # noqa: E402
from laco_tf.modeling import label_tokens  # noqa: E402
from laco_tf.modeling.build import build_model  # noqa: E402
from laco_tf.run_settings import RunOptions  # noqa: E402
from laco_tf.training.train_config import TrainConfig  # noqa: E402
from laco_tf.training.trainer import Trainer  # noqa: E402

RESULTS = os.path.join(HERE, "results")

# The models a harness can build, as run_classifier.py options.
VARIANTS = {
    "bert_baseline": dict(task="mltc", joint_embedding=False, cross_attention=False,
                          pooling="mean"),
    "laco": dict(task="mltc"),
    "laco+plcp": dict(task="plcp"),
    "laco+clcp": dict(task="clcp"),
    "laco+both": dict(task="both"),
}


def portable_args(args) -> dict:
  """A harness's arguments for its report, without this machine's paths: paths inside the
  repository become relative to it, others PATH/TO/<name>."""
  out = {}
  for key, value in vars(args).items():
    if isinstance(value, str) and os.path.isabs(value):
      inside = os.path.commonpath([ROOT, os.path.abspath(value)]) == ROOT
      value = (os.path.relpath(value, ROOT) if inside else
               "PATH/TO/" + os.path.basename(os.path.normpath(value)))
    out[key] = value
  return out


def build_trainer(variant: str, spec, strategy, num_labels: int, batch_size: int,
                  precision: str = "fp32", options: dict | None = None,
                  config: dict | None = None):
  """(trainer, label-token plan) of one VARIANTS entry with random labels label0..

  `options`: run_classifier.py options over the variant's (e.g. label_slots,
  length_bucketing, which gives the model the compiled GELU and dropout chains a bucketed
  run has; jit_compile). `config`: TrainConfig fields (e.g. ema_decay, microbatch_size).
  No weight average unless `config` asks for one. Label slots apply to JE variants only.
  """
  options = {"length_bucketing": True, **(options or {})}
  opts = RunOptions(data_dir="-", output_dir="/nonexistent", precision=precision,
                    **{**VARIANTS[variant], **options})
  if not opts.joint_embedding:
    opts = dataclasses.replace(opts, label_slots=0)
  labels = [f"label{i}" for i in range(num_labels)]
  plan = label_tokens.plan_label_tokens(tokenization.read_vocab(spec.vocab_file),
                                        spec.vocab_size, num_labels, opts.joint_embedding)
  model = build_model(spec, labels, plan, None, opts, strategy)
  aux = pipeline.AuxSampling(plcp=opts.task in ("plcp", "both"),
                             clcp=opts.task in ("clcp", "both"),
                             label_slots=model.label_slots)
  fields = dict(output_dir=opts.output_dir, train_file="", dev_file="",
                num_train_examples=10_000, num_labels=num_labels, task=opts.task,
                train_batch_size=batch_size, aux=aux, precision=precision,
                jit_compile=opts.jit_compile, ema_decay=0.0,
                length_bucketing=False)  # synthetic batches come padded as the caller asks
  trainer = Trainer(model, strategy, TrainConfig(**{**fields, **(config or {})}),
                    gold_dev=np.zeros([0, num_labels]))
  return trainer, plan


def _aux_draws(batch: dict, aux, seed: int) -> None:
  """The pipeline's PLCP / CLCP draws for each document of `batch`, added in place."""
  draws = [[], [], [], [], []]
  for i in range(int(batch["labels"].shape[0])):
    seed_i = samplers.example_seed(seed, 0, i)
    p, t, m = samplers.sample_plcp_pairs(batch["labels"][i], seed_i, aux.plcp_pairs_per_doc,
                                         aux.gamma)
    g, c = samplers.sample_clcp_given(batch["labels"][i], seed_i, aux.clcp_given)
    for lst, v in zip(draws, (p, t, m, g, c)):
      lst.append(v)
  if aux.plcp:
    batch.update(plcp_pairs=tf.stack(draws[0]), plcp_targets=tf.stack(draws[1]),
                 plcp_mask=tf.stack(draws[2]))
  if aux.clcp:
    batch.update(clcp_given=tf.stack(draws[3]), clcp_mask=tf.stack(draws[4]))


def synthetic_batch(doc_lengths, num_labels: int, label_ids, vocab_file: str, aux,
                    seed: int = 0, pad_to_multiple: int = 1) -> dict:
  """One training batch (features as the pipeline makes them) of the given doc lengths."""
  rng = np.random.RandomState(seed)
  special = tokenization.special_token_ids(tokenization.read_vocab(vocab_file))
  if aux.label_slots:
    label_ids = []  # documents alone: the model appends each sequence's K label tokens
  docs = tf.ragged.constant([rng.randint(2000, 29000, n).tolist() for n in doc_lengths],
                            dtype=tf.int64)
  max_len = max(doc_lengths) + len(label_ids) + 3
  packed = input_packing.pack_joint_input(docs, label_ids, special["cls"], special["sep"],
                                          max_len)
  size = len(doc_lengths)
  labels = rng.rand(size, num_labels) < 3.0 / num_labels
  labels[:, 0] = True
  batch = {"example_index": tf.range(size, dtype=tf.int64),
           "input_ids": tf.cast(packed["input_ids"].to_tensor(), tf.int32),
           "token_type_ids": tf.cast(packed["token_type_ids"].to_tensor(), tf.int32),
           "attention_mask": tf.cast(tf.ones_like(packed["input_ids"]).to_tensor(), tf.int32),
           "doc_length": tf.cast(packed["doc_length"], tf.int32),
           "labels": tf.constant(labels, tf.float32)}
  extra = -int(batch["input_ids"].shape[1]) % pad_to_multiple
  for key in ("input_ids", "token_type_ids", "attention_mask"):
    batch[key] = tf.pad(batch[key], [[0, 0], [0, extra]])
  if aux.label_slots:
    slots = tf.stack([samplers.sample_label_slots(batch["labels"][i],
                                                  samplers.example_seed(seed, 1, i),
                                                  aux.label_slots) for i in range(size)])
    batch.update(slot_labels=slots, labels=tf.gather(batch["labels"], slots, batch_dims=1))
  _aux_draws(batch, aux, seed)
  return batch


def real_tokens(batch: dict) -> int:
  return int(tf.reduce_sum(batch["attention_mask"]))


def time_steps(trainer, batches, strategy, steps: int, warmup: int = 2) -> list:
  """Seconds of each of `steps` training steps, after `warmup` steps, cycling over
  `batches` (a batch or a list of them).

  The batches' dimensions are declared unknown, as the pipeline's padded batches are, so
  batches of other lengths reuse the traced step instead of tracing a new one.
  """
  batches = batches if isinstance(batches, list) else [batches]
  signature = {k: tf.TensorSpec([None] * len(v.shape), v.dtype) for k, v in batches[0].items()}
  feed = [batches[i % len(batches)] for i in range(steps + warmup)]
  dataset = tf.data.Dataset.from_generator(lambda: iter(feed), output_signature=signature)
  it = iter(strategy.experimental_distribute_dataset(dataset))
  times = []
  for step in range(steps + warmup):
    start = time.perf_counter()
    trainer.steps.run(it, 1)["total"].numpy()
    if step >= warmup:
      times.append(time.perf_counter() - start)
  return times


def peak_rss_gb() -> float:
  """This process's peak resident memory so far, GB (ru_maxrss is in KiB on Linux)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rss_gib() -> float:
  """This process's resident memory now, GiB."""
  with open("/proc/self/statm", encoding="utf-8") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def load_texts(reuters_dir: str | None) -> list:
  """Training texts of Reuters (NLTK layout) if given, else of the bundled sample."""
  if reuters_dir:
    splits, _, _ = corpus_splits.load_splits(reuters_dir, "reuters", 0.1, 0)
  else:
    splits, _, _ = corpus_splits.load_splits(os.path.join(ROOT, "data", "sample"), "jsonl",
                                             0.1, 0)
  return [e.text for e in splits["train"]]


def wordpiece_lengths(texts, spec, budget: int) -> np.ndarray:
  """Each text's wordpiece count under `spec`'s tokenizer, capped at `budget`."""
  tokenizer = tokenization.make_tokenizer(spec.vocab_file, spec.do_lower_case)
  lengths = []
  for start in range(0, len(texts), 512):
    ids = tokenization.tokenize(tokenizer, tf.constant(texts[start:start + 512]))
    lengths.append(ids.row_lengths().numpy())
  return np.minimum(np.concatenate(lengths), budget)


def run_child(command: list, what: str, parse_stdout: bool = True) -> dict | None:
  """Runs `command` in a fresh process and returns the JSON object its last stdout line
  holds (None unless `parse_stdout`); a failure ends the harness with the child's last
  stderr lines."""
  done = subprocess.run(command, capture_output=True, text=True, check=False,
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
  if done.returncode or (parse_stdout and not done.stdout.strip()):
    raise SystemExit(f"{what}: the child process failed ({' '.join(command)}):\n"
                     f"{done.stderr[-2000:]}")
  return json.loads(done.stdout.strip().splitlines()[-1]) if parse_stdout else None


def other_code_label(directory: str) -> str:
  """How a harness names configurations run with the code checked out at `directory`
  (--other_code): "code at <short commit>" ("+ changes" when its tracked files differ from
  that commit), or its folder's name outside git."""
  if not os.path.isfile(os.path.join(directory, "laco_tf", "__init__.py")):
    raise SystemExit(f"--other_code={directory}: not a LACO-TF checkout (no laco_tf/)")
  def git(*command):
    return subprocess.run(["git", "-C", directory, *command], capture_output=True, text=True,
                          check=False).stdout.strip()
  commit = git("rev-parse", "--short", "HEAD")
  if not commit:
    return f"code in {os.path.basename(os.path.normpath(directory))}"
  return f"code at {commit}" + (" + changes" if git("status", "--porcelain", "-uno") else "")


def checkout_round(checkout: str, script: str, argv: list, report: str) -> dict:
  """{name [code at COMMIT]: times} of one round run by `checkout`'s own harness `script`
  (`argv`, one round) in a fresh process: the first round of its REPORT.json."""
  label = other_code_label(checkout)
  with tempfile.TemporaryDirectory() as tmp:
    run_child([sys.executable, os.path.join(checkout, "benchmarks", script), *argv,
               "--rounds=1", f"--out={tmp}"], label, parse_stdout=False)
    with open(os.path.join(tmp, report + ".json"), encoding="utf-8") as f:
      return {f"{name} [{label}]": t for name, t in json.load(f)["seconds"][0].items()}


def alternate_checkouts(other: str, script: str, argv: list, rounds: int, report: str) -> list:
  """Rounds of this checkout's and `other`'s harness, each in a fresh process, which goes
  first alternating by round (a harness process that has run one code times differently
  from a fresh one); this checkout's entries first in each round."""
  out = []
  for r in range(rounds):
    order = [ROOT, other] if r % 2 == 0 else [other, ROOT]
    times = {code: checkout_round(code, script, argv, report) for code in order}
    if set(times[ROOT]) & set(times[other]):  # the same label: say which is which
      times = {code: {f"{name} ({'this' if code == ROOT else 'other'} checkout)": t
                      for name, t in times[code].items()} for code in order}
    out.append({**times[ROOT], **times[other]})
    print(f"round {r + 1}: " + ", ".join(f"{k} {statistics.median(v):.3f}"
                                         for k, v in out[-1].items()), file=sys.stderr, flush=True)
  return out


def medians_and_ratios(rounds: list) -> tuple:
  """From [{name: [seconds, ...]}, ...] per round: ({name: median over every round},
  {name: [its median / the first name's median, per round]})."""
  names = list(rounds[0])
  medians = {n: statistics.median([t for r in rounds for t in r[n]]) for n in names}
  ratios = {n: [statistics.median(r[n]) / statistics.median(r[names[0]]) for r in rounds]
            for n in names}
  return medians, ratios


def save_report(report: dict, out: str, name: str) -> str:
  """Writes OUT/NAME.json atomically (the machine and the date added) and returns its path."""
  os.makedirs(out, exist_ok=True)
  report = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), **report}
  path = os.path.join(out, name + ".json")
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(report, f, indent=1)
  os.replace(path + ".tmp", path)
  return path


def machine() -> str:
  """The device kind and, on Linux, the CPU count and whether it has AVX-512 BF16."""
  kind = tf.config.list_logical_devices()[-1].device_type
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      bf16 = "avx512_bf16" in f.read()
  except OSError:
    bf16 = False
  return f"{kind}, {os.cpu_count()} cores" + (", AVX-512 BF16" if bf16 else "")
