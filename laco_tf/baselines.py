"""Linear baselines of the paper's Table 2 over TF-IDF: Binary Relevance and Classifier Chains.

  python -m laco_tf.baselines --method={br,cc} --data_dir=DIR --output_dir=DIR

BR trains one linear SVM per label (Boutell et al. 2004); CC chains them, each SVM also
seeing the previous labels' predictions (Read et al. 2011), in label-list order. Reads
every format `run_classifier.py` reads, with the same dev carving and label set, and
writes the same ``eval_results_*.json`` and ``predictions_*.jsonl``. SVMs give margins,
not probabilities: the files carry sigmoid(margin), so the usual 0.5 threshold is the
SVM's own decision (margin 0).
"""

import json
import os
import sys
import time

import numpy as np
from absl import app, flags
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multioutput import ClassifierChain
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from laco_tf import readers, results
from laco_tf.errors import InputError

METHODS = ("br", "cc")


def multi_hot(examples, labels) -> np.ndarray:
  index = {l: i for i, l in enumerate(labels)}
  y = np.zeros([len(examples), len(labels)], np.int32)
  for row, e in enumerate(examples):
    for l in e.labels:
      y[row, index[l]] = 1
  return y


def make_classifier(method: str, seed: int, c: float = 1.0):
  svm = LinearSVC(C=c, random_state=seed)
  if method == "br":
    return OneVsRestClassifier(svm)
  if method == "cc":
    return ClassifierChain(svm, order=None, random_state=seed)
  raise InputError(f"--method={method}: expected one of {', '.join(METHODS)}")


def run_baseline(method: str, data_dir: str, output_dir: str, data_format=None,
                 dev_fraction: float = 0.1, seed: int = 0, svm_c: float = 1.0) -> dict:
  """Trains `method` on train, writes results for every split; returns the summary."""
  splits, labels, unseen = readers.load_splits(data_dir, data_format, dev_fraction, seed)
  os.makedirs(output_dir, exist_ok=True)
  results.write_atomically(os.path.join(output_dir, "labels.txt"),
                           "".join(f"{l}\n" for l in labels))
  results.write_atomically(os.path.join(output_dir, "train_label_counts.json"),
                           json.dumps(readers.label_counts(splits["train"], labels), indent=1))
  start = time.time()
  vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))
  x_train = vectorizer.fit_transform(e.text for e in splits["train"])
  y_train = multi_hot(splits["train"], labels)
  # A label present in every training document has nothing to separate: LinearSVC
  # cannot fit one class, so such columns are predicted constant 1.
  constant = y_train.min(axis=0) == 1
  model = make_classifier(method, seed, svm_c).fit(x_train, y_train[:, ~constant])
  summary = {"method": method, "train_seconds": time.time() - start,
             "num_labels": len(labels), "output_dir": output_dir}
  print(f"{method}: trained on {len(splits['train'])} documents, {len(labels)} labels, "
        f"{x_train.shape[1]} features in {summary['train_seconds']:.1f}s")
  for split in ("train", "dev", "test"):
    if split not in splits:
      continue
    margins = np.full([len(splits[split]), len(labels)], 10.0)
    margins[:, ~constant] = model.decision_function(
        vectorizer.transform(e.text for e in splits[split]))
    probs = 1.0 / (1.0 + np.exp(-margins))
    result = results.write_results(output_dir, split, splits[split], labels,
                                   multi_hot(splits[split], labels), probs, 0.5,
                                   {"unseen_label_occurrences": unseen.get(split, 0)})
    summary[f"eval_{split}"] = result
    print(f"{split}: " + ", ".join(f"{k}={result[k]:.4f}" for k in (
        "micro_f1", "macro_f1", "hamming_loss", "subset_accuracy")))
  results.write_atomically(os.path.join(output_dir, "run_summary.json"),
                           json.dumps(summary, indent=1))
  return summary


def _define_flags():
  flags.DEFINE_enum("method", "br", list(METHODS), "br: binary relevance; cc: classifier chains.")
  flags.DEFINE_string("data_dir", None, "Corpus directory (any format run_classifier.py reads).")
  flags.DEFINE_enum("data_format", None, list(readers.FORMATS), "Force a data format.")
  flags.DEFINE_string("output_dir", None, "Where results go.")
  flags.DEFINE_float("dev_fraction", 0.1, "Dev share carved from train when there is no dev.")
  flags.DEFINE_integer("seed", 0, "Seed of the dev carve and the SVMs.")
  flags.DEFINE_float("svm_c", 1.0, "LinearSVC regularisation C.")


def main(argv):
  del argv
  f = flags.FLAGS
  try:
    if not f.output_dir:
      raise InputError("--output_dir is required")
    run_baseline(f.method, f.data_dir, f.output_dir, f.data_format, f.dev_fraction, f.seed,
                 f.svm_c)
  except InputError as e:
    sys.exit(f"laco_tf.baselines: error: {e}")


if __name__ == "__main__":
  _define_flags()  # Only as a program: run_classifier.py's flags share these names.
  app.run(main)
