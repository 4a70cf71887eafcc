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

from laco_tf import output_lock, plots, rerun, results, run_dir, run_settings
from laco_tf.data import input_packing, pipeline, readers, tfrecords, tokenization
from laco_tf.errors import InputError, NonFiniteError
from laco_tf.modeling import encoder as encoder_lib
from laco_tf.modeling import label_tokens, precision
from laco_tf.modeling import shortlist as shortlist_lib
from laco_tf.modeling.build import build_model, label_slots
from laco_tf.serving import export
from laco_tf.training import distribution, preemption, thresholds
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


def run(opts: run_settings.RunOptions, strategy: Optional[tf.distribute.Strategy] = None) -> dict:
  """Does what opts.do_* ask; returns a summary (metrics, paths).

  SIGTERM and SIGINT stop it at any point with `PreemptedError`, after saving what it
  finished (`training/preemption.py`)."""
  with preemption.StopSignals() as signals:
    signals.begin("reading the corpus")
    return _run(opts, strategy, signals)


def _run(opts, strategy, signals) -> dict:
  opts = run_settings.validate(opts)
  strategy = strategy or distribution.get_strategy(opts.distribution_strategy)
  opts = dataclasses.replace(opts, precision=precision.resolve(opts.precision))
  spec = encoder_lib.resolve_encoder(opts.bert_model, opts.do_lower_case,
                                    opts.bert_config_file, opts.vocab_file, opts.init_checkpoint)
  positions = spec.config_value("max_position_embeddings")
  if opts.max_seq_length is not None and opts.max_seq_length > positions:
    raise InputError(f"--max_seq_length={opts.max_seq_length}: the encoder has only "
                     f"{positions} positions (max_position_embeddings in {spec.config_file})")
  splits, labels, unseen = readers.load_splits(opts.data_dir, opts.data_format,
                                               opts.dev_fraction,
                                               run_settings.dev_split_seed(opts),
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
  # Everything is checked before the first byte is written: a run refused here leaves
  # nothing behind that would block its corrected rerun.
  room = input_packing.max_doc_tokens(opts.max_seq_length,
                                      run_settings.carried_labels(opts, len(labels)))
  if opts.cross_attention and opts.window_size > room:
    raise InputError(f"--window_size={opts.window_size}: wider than the text budget of "
                     f"{room} wordpieces; expected at most {room}")
  if not distribution.is_chief(strategy):
    # Another worker of a multi-worker run: the chief holds the lock and writes the
    # directory; this one keeps its own copies in a scratch directory.
    with distribution.scratch_dir(strategy) as scratch:
      return _run_locked(opts, strategy, spec, splits, labels, unseen, plan, descriptions,
                         identity, signals, scratch)
  with contextlib.ExitStack() as held:
    try:
      # Before the lock: a directory refused for files this project did not write gets
      # nothing written into it, not even the lock file.
      run_dir.check_new_run(opts.output_dir, opts.allow_foreign_files)
      held.enter_context(output_lock.hold(opts.output_dir))
    except InputError:
      distribution.chief_value(strategy, 0.0)  # the other workers stop too (see below)
      raise
    return _run_locked(opts, strategy, spec, splits, labels, unseen, plan, descriptions,
                       identity, signals)


def _prepare_output_dir(opts, strategy, spec, splits, labels, plan, identity, record_dir,
                        train_counts) -> dict:
  """The chief claims the output directory and writes the TFRecords; every other worker
  waits for them. Returns the TFRecords' metadata.

  Across workers, two rounds make every one of them stop when any cannot go on: the chief
  sends the fingerprint of its settings (0: it failed), then each worker says whether it
  failed (other settings, or the chief's TFRecords unreadable)."""
  settings = distribution.fingerprint(dataclasses.asdict(opts))
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
        metadata = tfrecords.prepare_tfrecords(record_dir, splits, labels, spec,
                                               *_record_packing(opts, plan, len(labels)),
                                               write=False)
      except InputError as e:
        problem = str(e)
    distribution.any_worker(strategy, problem is not None)
    if problem:
      raise InputError(problem)
    return metadata
  ready = False
  try:
    run_settings.claim_output_dir(opts, identity)
    results.write_atomically(os.path.join(opts.output_dir, "labels.txt"),
                             "".join(f"{l}\n" for l in labels))
    results.write_atomically(os.path.join(opts.output_dir, "train_label_counts.json"),
                             json.dumps(train_counts, indent=1))
    metadata = tfrecords.prepare_tfrecords(record_dir, splits, labels, spec,
                                           *_record_packing(opts, plan, len(labels)))
    ready = True
  finally:
    # Tells the other workers (if any) whether to go on, also when this one failed.
    distribution.chief_value(strategy, settings if ready else 0.0)
  if distribution.any_worker(strategy, False):
    raise InputError("another worker stopped before training (see its output)")
  return metadata


def _run_locked(opts, strategy, spec, splits, labels, unseen, plan, descriptions,
                identity, signals, scratch_dir=None) -> dict:
  """Trains, evaluates and exports (the chief holds the output directory's lock;
  another worker writes only to `scratch_dir`)."""
  signals.begin("writing the TFRecords")
  train_counts = readers.label_counts(splits["train"], labels)
  record_dir = os.path.join(opts.output_dir, "tfrecords")
  metadata = _prepare_output_dir(opts, strategy, spec, splits, labels, plan, identity,
                                 record_dir, train_counts)
  files = {s: os.path.join(record_dir, f"{s}.tfrecord") for s in splits}
  gold = {s: tfrecords.read_split_labels(files[s], len(labels)) for s in splits}

  task_type, task_id = distribution.task_of(strategy)
  print(f"Strategy: {distribution.describe(strategy)} with "
        f"{strategy.num_replicas_in_sync} replica(s), "
        f"precision {opts.precision}" + (", XLA" if opts.jit_compile else "") +
        (f", training micro-batches of {opts.microbatch_size}" if opts.microbatch_size else "") +
        (f"; this process is {task_type} {task_id}" if task_type else ""))
  shortlist_weights, slot_candidates, shortlist_recall = fit_shortlist(
      opts, spec, files, gold, len(labels))
  signals.begin("building the model")
  model = build_model(spec, labels, plan, descriptions, opts, strategy, shortlist_weights)
  config = TrainConfig(
      output_dir=opts.output_dir, train_file=files["train"], dev_file=files["dev"],
      num_train_examples=len(splits["train"]), num_labels=len(labels), task=opts.task,
      alpha=opts.alpha, train_batch_size=opts.train_batch_size,
      eval_batch_size=opts.eval_batch_size, learning_rate=opts.learning_rate,
      head_learning_rate=opts.head_learning_rate, warmup_proportion=opts.warmup_proportion,
      weight_decay=opts.weight_decay, layer_decay=opts.layer_decay, mlc_loss=opts.mlc_loss,
      ema_decay=opts.ema_decay,
      label_counts=tuple(train_counts[l] for l in labels), label_names=tuple(labels),
      hparams=run_settings.hparams(opts), hparam_types=run_settings.hparam_types(),
      num_train_epochs=opts.num_train_epochs, max_steps=opts.max_steps,
      eval_every_steps=opts.eval_every_steps, save_checkpoints_steps=opts.save_checkpoints_steps,
      early_stopping_patience=opts.early_stopping_patience,
      early_stopping_metric=opts.early_stopping_metric, threshold=opts.threshold,
      seed=opts.seed, precision=opts.precision, jit_compile=opts.jit_compile,
      steps_per_loop=opts.steps_per_loop, length_bucketing=opts.length_bucketing,
      microbatch_size=opts.microbatch_size,
      max_seq_length=record_length(opts, len(labels)), scratch_dir=scratch_dir,
      slot_candidates=slot_candidates,
      aux=pipeline.AuxSampling(
          plcp=opts.task in ("plcp", "both"), clcp=opts.task in ("clcp", "both"),
          plcp_pairs_per_doc=opts.plcp_pairs_per_doc, gamma=opts.gamma,
          clcp_given=opts.clcp_given, label_slots=label_slots(opts, len(labels))))
  trainer = Trainer(model, strategy, config, gold["dev"])
  summary_path = os.path.join(opts.output_dir, "run_summary.json")
  summary = {"output_dir": opts.output_dir, "num_labels": len(labels)}
  if shortlist_recall is not None:
    summary["shortlist_recall_dev"] = shortlist_recall
  if scratch_dir is not None:
    # Another worker: it trains in step with the chief, which alone evaluates, predicts
    # and exports what training chose.
    if opts.do_train:
      summary["train"] = trainer.train()
    return summary
  if not opts.do_train and os.path.isfile(summary_path):
    # Nothing is trained now, so what earlier invocations recorded (the training, other
    # splits' scores) still describes the best checkpoint: keep it, update what is redone.
    with open(summary_path, encoding="utf-8") as f:
      summary = {**json.load(f), **summary}
  if opts.do_train:
    signals.begin("training")
    summary["train"] = trainer.train()
    signals.begin("plotting the training curves")
    history = read_history(opts.output_dir)
    if history:
      summary["training_curves"] = plots.plot_training_curves(
          history, os.path.join(opts.output_dir, "training_curves.png"))
  signals.begin("restoring the best checkpoint")
  checkpoint = trainer.restore_best()
  print(f"Using weights from {checkpoint}")
  probs = {}

  def predict(split):
    if split not in probs:
      signals.begin(f"predicting {split}")
      print(f"Predicting {split}")
      probs[split] = trainer.predict(files[split], progress_total=len(splits[split]))
    return probs[split]
  rule = np.full(len(labels), opts.threshold)
  fingerprint = decided = None
  if opts.do_eval or opts.do_predict or opts.do_predict_train or opts.do_export:
    # The rule that this invocation's predictions and export use (training alone uses none).
    fingerprint = rerun.weights_fingerprint(opts, checkpoint, metadata)
    if opts.threshold_strategy != "fixed":
      kept = rerun.kept_rule(opts.output_dir, fingerprint, labels)
      rule = np.array(kept) if kept is not None else thresholds.tune(
          gold["dev"], predict("dev"), opts.threshold_strategy, opts.threshold,
          opts.at_least_one_label)
      print(f"Thresholds ({opts.threshold_strategy}, tuned on dev): "
            f"min {rule.min():.2f}, median {np.median(rule):.2f}, max {rule.max():.2f}")
    decision = thresholds.describe(rule, labels, opts.threshold_strategy,
                                   opts.at_least_one_label)
    results.write_atomically(os.path.join(opts.output_dir, "thresholds.json"),
                             json.dumps({**decision, rerun.KEY: fingerprint}, indent=1))
    summary["decision_rule"] = {k: v for k, v in decision.items() if k != "thresholds"}
    decided = rerun.with_rule(fingerprint, decision)
  for split, wanted in (("dev", opts.do_eval), ("test", opts.do_predict),
                        ("train", opts.do_predict_train)):
    if not wanted:
      continue
    if split not in splits:
      print(f"No {split} split in {opts.data_dir}: skipped")
      continue
    result = rerun.kept_result(opts.output_dir, split, decided)
    if result is not None:
      print(f"{split}: kept eval_results_{split}.json and predictions_{split}.jsonl: this "
            "checkpoint, these settings and this decision rule made them (delete them to "
            "score again)")
    else:
      predict(split)
      with signals.deferred():  # a split's result files are written whole, or not at all
        result = results.write_results(
            opts.output_dir, split, splits[split], labels, gold[split], predict(split), rule,
            {"checkpoint": os.path.basename(checkpoint), "unseen_label_occurrences":
             unseen.get(split, 0), rerun.KEY: decided}, at_least_one=opts.at_least_one_label)
    summary[f"eval_{split}"] = result
    print(f"{split}: " + ", ".join(f"{k}={result[k]:.4f}" for k in (
        "micro_f1", "macro_f1", "hamming_loss", "subset_accuracy")))
  export_dir = opts.export_dir or os.path.join(opts.output_dir, "export")
  kept_export = rerun.kept_export(export_dir, decided) if opts.do_export else None
  if kept_export:
    summary["export_dir"] = kept_export
    print(f"SavedModel kept: {kept_export} holds this checkpoint with these settings and "
          "this decision rule")
  elif opts.do_export:
    signals.begin("exporting")
    if not all(np.all(np.isfinite(v.numpy())) for v in model.variables):
      raise NonFiniteError(f"{checkpoint}: the weights hold NaN or infinity; nothing exported")
    module = export.LacoServingModule(model, spec.vocab_file, spec.do_lower_case, labels,
                                      metadata["label_token_ids"],
                                      record_length(opts, len(labels)),
                                      rule, opts.at_least_one_label,
                                      opts.serving_chunk_size)
    summary["export_dir"] = export.export_saved_model(
        module, export_dir, {**metadata, "encoder": spec.identity(), "task": opts.task,
                             "label_token_scheme": plan.scheme, "label_init": opts.label_init,
                             "decision_rule": decision,
                             "serving_chunk_size": opts.serving_chunk_size,
                             rerun.KEY: decided})
    print(f"SavedModel written to {summary['export_dir']}")
  signals.begin("writing the run summary")
  results.write_atomically(summary_path, json.dumps(
      summary, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
  return summary
