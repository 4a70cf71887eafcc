"""A run's phases after training: the decision rule, each split's scores and predictions
(`--do_eval`, `--do_predict`, `--do_predict_train`) and the export (`--do_export`).

Each works on the best checkpoint's weights, already in the model, and keeps what an
earlier invocation made from the same checkpoint, settings and rule (`rerun.py`).
"""

import json
import os

import numpy as np

from laco_tf import rerun, results
from laco_tf.errors import NonFiniteError
from laco_tf.serving import export
from laco_tf.training import thresholds


class SplitProbabilities:
  """Each split's [N, n] probabilities, predicted once, when first asked for."""

  def __init__(self, run, trainer):
    self._run, self._trainer, self._probs = run, trainer, {}

  def __call__(self, split: str) -> np.ndarray:
    if split not in self._probs:
      self._run.signals.begin(f"predicting {split}")
      print(f"Predicting {split}")
      self._probs[split] = self._trainer.predict(self._run.files[split],
                                                 progress_total=len(self._run.splits[split]))
    return self._probs[split]


def decide(run, checkpoint: str, predict: SplitProbabilities, summary: dict):
  """The decision rule of this invocation's predictions and export, written to
  thresholds.json: returns (per-label thresholds, the rule's description, the fingerprint
  of weights and rule), or (--threshold for all, None, None) when nothing is predicted."""
  opts, labels = run.opts, run.labels
  rule = np.full(len(labels), opts.threshold)
  if not (opts.do_eval or opts.do_predict or opts.do_predict_train or opts.do_export):
    return rule, None, None  # training alone uses no rule
  fingerprint = rerun.weights_fingerprint(opts, checkpoint, run.metadata)
  if opts.threshold_strategy != "fixed":
    kept = rerun.kept_rule(opts.output_dir, fingerprint, labels)
    rule = np.array(kept) if kept is not None else thresholds.tune(
        run.gold["dev"], predict("dev"), opts.threshold_strategy, opts.threshold,
        opts.at_least_one_label)
    print(f"Thresholds ({opts.threshold_strategy}, tuned on dev): "
          f"min {rule.min():.2f}, median {np.median(rule):.2f}, max {rule.max():.2f}")
  decision = thresholds.describe(rule, labels, opts.threshold_strategy,
                                 opts.at_least_one_label)
  results.write_atomically(os.path.join(opts.output_dir, "thresholds.json"),
                           json.dumps({**decision, rerun.KEY: fingerprint}, indent=1))
  summary["decision_rule"] = {k: v for k, v in decision.items() if k != "thresholds"}
  return rule, decision, rerun.with_rule(fingerprint, decision)


def score_splits(run, checkpoint: str, predict: SplitProbabilities, rule, decided,
                 summary: dict) -> None:
  """eval_results_{split}.json and predictions_{split}.jsonl of each split asked for."""
  opts = run.opts
  for split, wanted in (("dev", opts.do_eval), ("test", opts.do_predict),
                        ("train", opts.do_predict_train)):
    if not wanted:
      continue
    if split not in run.splits:
      print(f"No {split} split in {opts.data_dir}: skipped")
      continue
    result = rerun.kept_result(opts.output_dir, split, decided)
    if result is not None:
      print(f"{split}: kept eval_results_{split}.json and predictions_{split}.jsonl: this "
            "checkpoint, these settings and this decision rule made them (delete them to "
            "score again)")
    else:
      predict(split)
      with run.signals.deferred():  # a split's result files are written whole, or not at all
        result = results.write_results(
            opts.output_dir, split, run.splits[split], run.labels, run.gold[split],
            predict(split), rule,
            {"checkpoint": os.path.basename(checkpoint), "unseen_label_occurrences":
             run.unseen.get(split, 0), rerun.KEY: decided}, at_least_one=opts.at_least_one_label)
    summary[f"eval_{split}"] = result
    print(f"{split}: " + ", ".join(f"{k}={result[k]:.4f}" for k in (
        "micro_f1", "macro_f1", "hamming_loss", "subset_accuracy")))


def export_model(run, model, checkpoint: str, rule, decision, decided, summary: dict) -> None:
  """A new SavedModel version, unless the latest export holds these weights and rule."""
  opts = run.opts
  export_dir = opts.export_dir or os.path.join(opts.output_dir, "export")
  kept_export = rerun.kept_export(export_dir, decided)
  if kept_export:
    summary["export_dir"] = kept_export
    print(f"SavedModel kept: {kept_export} holds this checkpoint with these settings and "
          "this decision rule")
    return
  run.signals.begin("exporting")
  if not all(np.all(np.isfinite(v.numpy())) for v in model.variables):
    raise NonFiniteError(f"{checkpoint}: the weights hold NaN or infinity; nothing exported")
  module = export.LacoServingModule(model, run.spec.vocab_file, run.spec.do_lower_case,
                                    run.labels, run.metadata["label_token_ids"],
                                    run.record_length, rule, opts.at_least_one_label,
                                    opts.serving_chunk_size)
  summary["export_dir"] = export.export_saved_model(
      module, export_dir, {**run.metadata, "encoder": run.spec.identity(), "task": opts.task,
                           "label_token_scheme": run.plan.scheme,
                           "label_init": opts.label_init, "decision_rule": decision,
                           "serving_chunk_size": opts.serving_chunk_size,
                           rerun.KEY: decided})
  print(f"SavedModel written to {summary['export_dir']}")
