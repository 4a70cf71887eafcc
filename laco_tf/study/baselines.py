"""Linear baselines of the paper's Table 2 over TF-IDF: Binary Relevance and Classifier Chains.

  python -m laco_tf.study.baselines --method={br,cc} --data_dir=DIR --output_dir=DIR

BR trains one linear SVM per label (Boutell et al. 2004); CC chains them, each SVM also
seeing the previous labels' predictions (Read et al. 2011), in label-list order. Reads
every format `run_classifier.py` reads, with the same dev carving and label set, and
writes the same ``eval_results_*.json`` and ``predictions_*.jsonl``. SVMs give margins,
not probabilities: the files carry sigmoid(margin), so the usual 0.5 threshold is the
SVM's own decision (margin 0).

Our care, so that the baselines are competent (a new user's first try would be): each
SVM weighs its label's positives by their rarity (`class_weight="balanced"`, default),
and the regularisation C and the n-gram range are chosen on dev micro-F1 from a small
grid (C_GRID x NGRAM_GRID) unless given; the choice and every candidate's dev scores go
to run_summary.json. The test split is never looked at before the choice is made.
"""

import json
import os
import time

import numpy as np
from absl import flags
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multioutput import ClassifierChain
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import LinearSVC

from laco_tf import cli, results
from laco_tf.data import corpus_splits, readers
from laco_tf.training import metrics
from laco_tf.errors import InputError

METHODS = ("br", "cc")
C_GRID = (0.1, 0.3, 1.0, 3.0)
NGRAM_GRID = (1, 2)          # longest n-gram: unigrams, or unigrams + bigrams
CLASS_WEIGHTS = ("balanced", "none")


def multi_hot(examples, labels) -> np.ndarray:
  index = {l: i for i, l in enumerate(labels)}
  y = np.zeros([len(examples), len(labels)], np.int32)
  for row, e in enumerate(examples):
    for l in e.labels:
      y[row, index[l]] = 1
  return y


def make_classifier(method: str, seed: int, c: float = 1.0, class_weight: str = "balanced"):
  if class_weight not in CLASS_WEIGHTS:
    raise InputError(f"--class_weight={class_weight}: expected one of {', '.join(CLASS_WEIGHTS)}")
  svm = LinearSVC(C=c, random_state=seed,
                  class_weight="balanced" if class_weight == "balanced" else None)
  if method == "br":
    return OneVsRestClassifier(svm)
  if method == "cc":
    return ClassifierChain(svm, order=None, random_state=seed)
  raise InputError(f"--method={method}: expected one of {', '.join(METHODS)}")


def _fit(method, seed, c, ngram_max, class_weight, train, labels):
  """(vectorizer, model, constant columns) of one setting, fitted on `train`."""
  vectorizer = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, ngram_max))
  x_train = vectorizer.fit_transform(e.text for e in train)
  y_train = multi_hot(train, labels)
  # A label present in every training document has nothing to separate: LinearSVC
  # cannot fit one class, so such columns are predicted constant 1.
  constant = y_train.min(axis=0) == 1
  model = make_classifier(method, seed, c, class_weight).fit(x_train, y_train[:, ~constant])
  return vectorizer, model, constant


def _probabilities(fitted, examples, num_labels):
  vectorizer, model, constant = fitted
  margins = np.full([len(examples), num_labels], 10.0)
  margins[:, ~constant] = model.decision_function(vectorizer.transform(e.text for e in examples))
  return 1.0 / (1.0 + np.exp(-margins))


def run_baseline(method: str, data_dir: str, output_dir: str, data_format=None,
                 dev_fraction: float = 0.1, seed: int = 0, svm_c: float = None,
                 ngram_max: int = None, class_weight: str = "balanced",
                 test_fraction: float = 0.0, encoding: str = "utf-8") -> dict:
  """Chooses C and the n-gram range on dev (unless given), trains `method` on train,
  writes results for every split; returns the summary."""
  if svm_c is not None and not svm_c > 0:
    raise InputError(f"--svm_c={svm_c}: expected a positive number")
  if ngram_max is not None and ngram_max < 1:
    raise InputError(f"--ngram_max={ngram_max}: expected a positive integer")
  readers.check_encoding(encoding)
  make_classifier(method, seed, 1.0, class_weight)  # Checks method and weights up front.
  splits, labels, unseen = corpus_splits.load_splits(data_dir, data_format, dev_fraction,
                                                     seed, test_fraction, encoding)
  os.makedirs(output_dir, exist_ok=True)
  results.write_atomically(os.path.join(output_dir, "labels.txt"),
                           "".join(f"{l}\n" for l in labels))
  counts = corpus_splits.label_counts(splits["train"], labels)
  results.write_atomically(os.path.join(output_dir, "train_label_counts.json"),
                           json.dumps(counts, indent=1))
  start = time.time()
  grid = [(c, n) for c in ((svm_c,) if svm_c else C_GRID)
          for n in ((ngram_max,) if ngram_max else NGRAM_GRID)]
  gold_dev = multi_hot(splits["dev"], labels)
  candidates, best, best_f1 = [], None, -1.0
  for c, n in grid:
    fitted = _fit(method, seed, c, n, class_weight, splits["train"], labels)
    if len(grid) == 1:  # Nothing to choose: dev is not scored twice.
      best = (c, n, fitted)
      break
    dev = metrics.multilabel_metrics(gold_dev, _probabilities(fitted, splits["dev"],
                                                               len(labels)) > 0.5)
    candidates.append({"svm_c": c, "ngram_max": n, "dev_micro_f1": dev["micro_f1"],
                       "dev_macro_f1": dev["macro_f1"]})
    print(f"{method}: C={c} n-grams 1-{n}: dev micro-F1 {dev['micro_f1']:.4f} "
          f"macro-F1 {dev['macro_f1']:.4f}")
    if dev["micro_f1"] > best_f1:  # The first of equal scores wins.
      best, best_f1 = (c, n, fitted), dev["micro_f1"]
  c, n, fitted = best
  summary = {"method": method, "train_seconds": time.time() - start,
             "num_labels": len(labels), "output_dir": output_dir, "svm_c": c,
             "ngram_max": n, "class_weight": class_weight, "selection": candidates}
  print(f"{method}: {len(splits['train'])} training documents, {len(labels)} labels, "
        f"C={c}, n-grams 1-{n}, class weights {class_weight}, "
        f"{summary['train_seconds']:.1f}s in all")
  for split in ("train", "dev", "test"):
    if split not in splits:
      continue
    probs = _probabilities(fitted, splits[split], len(labels))
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
  flags.DEFINE_float("test_fraction", 0.0,
                     "Hold out this share of train as test when there is no test split (as "
                     "run_classifier.py's flag).")
  flags.DEFINE_float("svm_c", None, f"LinearSVC regularisation C; unset: chosen on dev from "
                     f"{C_GRID}.")
  flags.DEFINE_integer("ngram_max", None, "Longest TF-IDF n-gram; unset: chosen on dev from "
                       f"{NGRAM_GRID}.")
  flags.DEFINE_string("encoding", "utf-8", "Text encoding of the corpus files (as "
                      "run_classifier.py's flag).")
  flags.DEFINE_enum("class_weight", "balanced", list(CLASS_WEIGHTS),
                    "balanced: weigh each label's positives by their rarity; none: plain SVMs.")


def main(argv):
  del argv
  f = flags.FLAGS
  try:
    if not f.output_dir:
      raise InputError("--output_dir is required")
    run_baseline(f.method, f.data_dir, f.output_dir, f.data_format, f.dev_fraction, f.seed,
                 f.svm_c, f.ngram_max, f.class_weight, f.test_fraction, f.encoding)
  except InputError as e:
    cli.fail(e)


def console() -> None:
  """Entry point of the installed command (pyproject.toml's [project.scripts])."""
  _define_flags()  # Only as a program: run_classifier.py's flags share these names.
  cli.run(main, cli.installed_name(), [__name__])


if __name__ == "__main__":
  _define_flags()
  cli.run(main, "laco_tf.study.baselines", [__name__])
