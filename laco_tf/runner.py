"""Runs one LACO job end to end: read -> TFRecords -> train -> evaluate -> export.

`run_classifier.py` only parses flags and calls `run`; tests call `run` directly,
optionally with their own `tf.distribute` strategy.
"""

import contextlib
import dataclasses
import json
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from laco_tf import after_training, output_lock, plots, results, run_dir, run_settings
from laco_tf.data import corpus_splits, input_packing, pipeline, tfrecords, tokenization
from laco_tf.errors import InputError
from laco_tf.modeling import encoder as encoder_lib
from laco_tf.modeling import label_tokens, precision
from laco_tf.modeling import shortlist as shortlist_lib
from laco_tf.modeling.build import build_model, label_slots
from laco_tf.training import distribution, preemption
from laco_tf.training.history import read_history
from laco_tf.training.train_config import TrainConfig
from laco_tf.training.trainer import Trainer


def fit_shortlist(opts, spec, files: dict, gold: dict, num_labels: int):
  """With label slots: the first-stage shortlist fitted on the training records, the
  training documents' candidates (for --slot_negatives=shortlist, else None) and its
  recall at K on dev. (None, None, None) without label slots."""
  slots = label_slots(opts, num_labels)
  if not slots:
    return None, None, None
  docs, doc_labels = tfrecords.read_documents(files["train"])
  weights = shortlist_lib.fit(docs, doc_labels, spec.vocab_size, num_labels)
  candidates = (shortlist_lib.top_candidates(weights, docs, slots)
                if opts.slot_negatives == "shortlist" else None)
  recall = None
  if "dev" in files:
    dev_docs, _ = tfrecords.read_documents(files["dev"])
    scores = shortlist_lib.LabelShortlist(weights).scores_of(dev_docs)
    recall = shortlist_lib.recall_at(scores, gold["dev"], slots)
    print(f"Label shortlist (TF-IDF centroids): recall at {slots} on dev {recall:.4f}")
  return weights, candidates, recall


def _record_packing(opts, plan, num_labels):
  """(label token ids, sequence length) the TFRecords are packed with."""
  slots = label_slots(opts, num_labels)
  return ([] if slots else plan.token_ids), record_length(opts, num_labels)


def record_length(opts: run_settings.RunOptions, num_labels: int) -> int:
  """The TFRecords' sequence length: the whole JE input, or with label slots the document
  part ``[CLS] x [SEP]`` (the model appends K labels and a [SEP])."""
  slots = label_slots(opts, num_labels)
  return opts.max_seq_length - slots - 1 if slots else opts.max_seq_length


@dataclasses.dataclass
class RunContext:
  """What one run has read and decided, passed from phase to phase."""
  opts: run_settings.RunOptions
  strategy: tf.distribute.Strategy
  signals: preemption.StopSignals
  spec: encoder_lib.EncoderSpec
  splits: dict  # split -> examples
  labels: list
  unseen: dict  # split -> occurrences of labels unseen in training
  plan: label_tokens.LabelTokenPlan
  descriptions: Optional[dict]
  identity: dict  # what the output directory's run must match
  scratch_dir: Optional[str] = None  # another worker's own directory (None: the chief)
  metadata: Optional[dict] = None  # the TFRecords' metadata, once written
  files: dict = dataclasses.field(default_factory=dict)  # split -> TFRecord file
  gold: dict = dataclasses.field(default_factory=dict)  # split -> [N, n] 0/1 labels

  @property
  def record_length(self) -> int:
    return record_length(self.opts, len(self.labels))


def run(opts: run_settings.RunOptions, strategy: Optional[tf.distribute.Strategy] = None) -> dict:
  """Does what opts.do_* ask; returns a summary (metrics, paths).

  SIGTERM and SIGINT stop it at any point with `PreemptedError`, after saving what it
  finished (`training/preemption.py`)."""
  with preemption.StopSignals() as signals:
    signals.begin("reading the corpus")
    return _run(opts, strategy, signals)


def _read(opts, strategy, signals) -> RunContext:
  """Reads the encoder's files and the corpus, and checks every setting against them."""
  spec = encoder_lib.resolve_encoder(opts.bert_model, opts.do_lower_case,
                                    opts.bert_config_file, opts.vocab_file, opts.init_checkpoint)
  positions = spec.config_value("max_position_embeddings")
  if opts.max_seq_length is not None and opts.max_seq_length > positions:
    raise InputError(f"--max_seq_length={opts.max_seq_length}: the encoder has only "
                     f"{positions} positions (max_position_embeddings in {spec.config_file})")
  layers = spec.config_value("num_hidden_layers")
  if opts.label_join_layer >= layers:
    raise InputError(f"--label_join_layer={opts.label_join_layer}: expected a layer below the "
                     f"encoder's {layers} (num_hidden_layers in {spec.config_file})")
  splits, labels, unseen = corpus_splits.load_splits(
      opts.data_dir, opts.data_format, opts.dev_fraction, run_settings.dev_split_seed(opts),
      opts.test_fraction or 0.0, opts.encoding)
  run_settings.check_num_labels(opts, len(labels))
  opts = run_settings.resolve_lengths(opts, len(labels), positions)
  plan = label_tokens.plan_label_tokens(tokenization.read_vocab(spec.vocab_file),
                                        spec.vocab_size, len(labels), opts.joint_embedding)
  descriptions = (label_tokens.read_descriptions(opts.label_descriptions, labels)
                  if opts.label_descriptions else None)
  identity = {"encoder": spec.identity(), "corpus": tfrecords.corpus_fingerprint(splits),
              "labels": labels, "label_token_scheme": plan.scheme,
              "label_descriptions": descriptions}
  room = input_packing.max_doc_tokens(opts.max_seq_length,
                                      run_settings.carried_labels(opts, len(labels)))
  if opts.cross_attention and opts.window_size > room:
    raise InputError(f"--window_size={opts.window_size}: wider than the text budget of "
                     f"{room} wordpieces; expected at most {room}")
  return RunContext(opts, strategy, signals, spec, splits, labels, unseen, plan,
                    descriptions, identity)


def _run(opts, strategy, signals) -> dict:
  opts = run_settings.validate(opts)
  strategy = strategy or distribution.get_strategy(opts.distribution_strategy)
  opts = dataclasses.replace(opts, precision=precision.resolve(opts.precision))
  # Everything is checked before the first byte is written: a run refused here leaves
  # nothing behind that would block its corrected rerun.
  ctx = _read(opts, strategy, signals)
  if not distribution.is_chief(strategy):
    # Another worker of a multi-worker run: the chief holds the lock and writes the
    # directory; this one keeps its own copies in a scratch directory.
    with distribution.scratch_dir(strategy) as scratch:
      return _run_locked(dataclasses.replace(ctx, scratch_dir=scratch))
  with contextlib.ExitStack() as held:
    try:
      # Before the lock: a directory refused for files this project did not write gets
      # nothing written into it, not even the lock file.
      run_dir.check_new_run(ctx.opts.output_dir, ctx.opts.allow_foreign_files)
      held.enter_context(output_lock.hold(ctx.opts.output_dir))
    except InputError:
      distribution.chief_value(strategy, 0.0)  # the other workers stop too (see below)
      raise
    return _run_locked(ctx)


def _prepare_output_dir(ctx: RunContext, record_dir: str, train_counts: dict) -> dict:
  """The chief claims the output directory and writes the TFRecords; every other worker
  waits for them. Returns the TFRecords' metadata.

  Across workers, two rounds make every one of them stop when any cannot go on: the chief
  sends the fingerprint of its settings (0: it failed), then each worker says whether it
  failed (other settings, or the chief's TFRecords unreadable)."""
  opts, strategy, labels = ctx.opts, ctx.strategy, ctx.labels
  settings = distribution.fingerprint(dataclasses.asdict(opts))
  packing = _record_packing(opts, ctx.plan, len(labels))
  if not distribution.is_chief(strategy):
    chief_settings = distribution.chief_value(strategy, 0.0)
    if chief_settings == 0.0:
      raise InputError("the chief stopped before writing the TFRecords (see its output)")
    problem, metadata = None, None
    if chief_settings != settings:
      problem = ("this worker's settings differ from the chief's: run the same command on "
                 "every worker (and pass --precision, which auto chooses per machine)")
    else:
      try:
        metadata = tfrecords.prepare_tfrecords(record_dir, ctx.splits, labels, ctx.spec,
                                               *packing, write=False)
      except InputError as e:
        problem = str(e)
    distribution.any_worker(strategy, problem is not None)
    if problem:
      raise InputError(problem)
    return metadata
  ready = False
  try:
    run_dir.claim_output_dir(opts, ctx.identity)
    results.write_atomically(os.path.join(opts.output_dir, "labels.txt"),
                             "".join(f"{l}\n" for l in labels))
    results.write_atomically(os.path.join(opts.output_dir, "train_label_counts.json"),
                             json.dumps(train_counts, indent=1))
    metadata = tfrecords.prepare_tfrecords(record_dir, ctx.splits, labels, ctx.spec, *packing)
    ready = True
  finally:
    # Tells the other workers (if any) whether to go on, also when this one failed.
    distribution.chief_value(strategy, settings if ready else 0.0)
  if distribution.any_worker(strategy, False):
    raise InputError("another worker stopped before training (see its output)")
  return metadata


def _train_config(ctx: RunContext, train_counts: dict, slot_candidates) -> TrainConfig:
  opts, labels = ctx.opts, ctx.labels
  return TrainConfig.from_options(
      opts, train_file=ctx.files["train"], dev_file=ctx.files["dev"],
      num_train_examples=len(ctx.splits["train"]), num_labels=len(labels),
      label_counts=tuple(train_counts[l] for l in labels), label_names=tuple(labels),
      hparams=run_settings.hparams(opts), hparam_types=run_settings.hparam_types(),
      max_seq_length=ctx.record_length, scratch_dir=ctx.scratch_dir,
      slot_candidates=slot_candidates,
      aux=pipeline.AuxSampling(
          plcp=opts.task in ("plcp", "both"), clcp=opts.task in ("clcp", "both"),
          plcp_pairs_per_doc=opts.plcp_pairs_per_doc, gamma=opts.gamma,
          clcp_given=opts.clcp_given, label_slots=label_slots(opts, len(labels))))


def _print_strategy(ctx: RunContext) -> None:
  opts, strategy = ctx.opts, ctx.strategy
  task_type, task_id = distribution.task_of(strategy)
  print(f"Strategy: {distribution.describe(strategy)} with "
        f"{strategy.num_replicas_in_sync} replica(s), "
        f"precision {opts.precision}" + (", XLA" if opts.jit_compile else "") +
        (f", training micro-batches of {opts.microbatch_size}" if opts.microbatch_size else "") +
        (f"; this process is {task_type} {task_id}" if task_type else ""))


def _prepare(ctx: RunContext):
  """Writes the TFRecords and builds the model and its trainer: (model, trainer, the run
  summary so far)."""
  opts = ctx.opts
  ctx.signals.begin("writing the TFRecords")
  train_counts = corpus_splits.label_counts(ctx.splits["train"], ctx.labels)
  record_dir = os.path.join(opts.output_dir, "tfrecords")
  ctx.metadata = _prepare_output_dir(ctx, record_dir, train_counts)
  ctx.files = {s: os.path.join(record_dir, f"{s}.tfrecord") for s in ctx.splits}
  ctx.gold = {s: tfrecords.read_split_labels(ctx.files[s], len(ctx.labels)) for s in ctx.splits}
  _print_strategy(ctx)
  shortlist_weights, slot_candidates, shortlist_recall = fit_shortlist(
      opts, ctx.spec, ctx.files, ctx.gold, len(ctx.labels))
  ctx.signals.begin("building the model")
  model = build_model(ctx.spec, ctx.labels, ctx.plan, ctx.descriptions, opts, ctx.strategy,
                      shortlist_weights)
  trainer = Trainer(model, ctx.strategy, _train_config(ctx, train_counts, slot_candidates),
                    ctx.gold["dev"])
  summary = {"output_dir": opts.output_dir, "num_labels": len(ctx.labels)}
  if shortlist_recall is not None:
    summary["shortlist_recall_dev"] = shortlist_recall
  return model, trainer, summary


def _train(ctx: RunContext, trainer: Trainer, summary: dict, summary_path: str) -> dict:
  """--do_train (with the training curves); without it, the summary earlier invocations
  recorded, updated with what this one redoes."""
  opts = ctx.opts
  if not opts.do_train:
    if os.path.isfile(summary_path):
      # Nothing is trained now, so what earlier invocations recorded (the training, other
      # splits' scores) still describes the best checkpoint: keep it, update what is redone.
      with open(summary_path, encoding="utf-8") as f:
        summary = {**json.load(f), **summary}
    return summary
  ctx.signals.begin("training")
  summary["train"] = trainer.train()
  ctx.signals.begin("plotting the training curves")
  history = read_history(opts.output_dir)
  if history:
    summary["training_curves"] = plots.plot_training_curves(
        history, os.path.join(opts.output_dir, "training_curves.png"))
  return summary


def _run_locked(ctx: RunContext) -> dict:
  """Trains, evaluates and exports (the chief holds the output directory's lock;
  another worker writes only to its scratch directory)."""
  opts = ctx.opts
  model, trainer, summary = _prepare(ctx)
  if ctx.scratch_dir is not None:
    # Another worker: it trains in step with the chief, which alone evaluates, predicts
    # and exports what training chose.
    if opts.do_train:
      summary["train"] = trainer.train()
    return summary
  summary_path = os.path.join(opts.output_dir, "run_summary.json")
  summary = _train(ctx, trainer, summary, summary_path)
  ctx.signals.begin("restoring the best checkpoint")
  checkpoint = trainer.restore_best()
  print(f"Using weights from {checkpoint}")
  predict = after_training.SplitProbabilities(ctx, trainer)
  rule, decision, decided = after_training.decide(ctx, checkpoint, predict, summary)
  after_training.score_splits(ctx, checkpoint, predict, rule, decided, summary)
  if opts.do_export:
    after_training.export_model(ctx, model, checkpoint, rule, decision, decided, summary)
  ctx.signals.begin("writing the run summary")
  results.write_atomically(summary_path, json.dumps(
      summary, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
  return summary
