"""Linear baselines (paper Table 2): same inputs and output files as run_classifier.py."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import f1_score
from sklearn.svm import LinearSVC

from laco_tf.data import corpus_splits, readers
from laco_tf.study import baselines
from laco_tf.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_binary_relevance_is_one_linear_svm_per_label(tmp_path, tiny_corpus):
  summary = baselines.run_baseline("br", tiny_corpus, str(tmp_path), svm_c=1.0, ngram_max=2,
                                   class_weight="none")
  assert summary["selection"] == []  # Fully specified: nothing chosen on dev.
  splits = readers.read_corpus(tiny_corpus)
  labels = corpus_splits.label_list(splits["train"])
  vec = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))
  x = vec.fit_transform(e.text for e in splits["train"])
  x_test = vec.transform(e.text for e in splits["test"])
  y = baselines.multi_hot(splits["train"], labels)
  want = np.stack([LinearSVC(random_state=0).fit(x, y[:, j]).decision_function(x_test) > 0
                   for j in range(len(labels))], axis=1)
  with open(tmp_path / "predictions_test.jsonl") as f:
    rows = [json.loads(l) for l in f]
  got = np.array([[l in r["predicted"] for l in labels] for r in rows])
  np.testing.assert_array_equal(got, want)
  assert [r["id"] for r in rows] == [e.guid for e in splits["test"]]
  for split in ("train", "dev", "test"):
    with open(tmp_path / f"eval_results_{split}.json") as f:
      assert json.load(f)["micro_f1"] == summary[f"eval_{split}"]["micro_f1"]
  assert summary["eval_test"]["micro_f1"] > 0.8


def test_classifier_chains_run_from_the_command_line_on_the_reuters_layout(tmp_path):
  data = tmp_path / "reuters"
  (data / "training").mkdir(parents=True)
  lines = []
  words = {"earn": "profit dividend quarter", "acq": "merger stake buy", "oil": "crude opec"}
  for i in range(40):
    doc_labels = ["earn"] if i % 3 == 0 else ["acq", "oil"] if i % 3 == 1 else ["oil"]
    (data / "training" / str(i)).write_text(" ".join(words[l] for l in doc_labels) + f" n{i}")
    lines.append(f"training/{i} {' '.join(doc_labels)}")
  (data / "cats.txt").write_text("\n".join(lines) + "\n")
  out = tmp_path / "out"
  result = subprocess.run([sys.executable, "-m", "laco_tf.study.baselines", "--method=cc",
                           f"--data_dir={data}", f"--output_dir={out}", "--dev_fraction=0.25"],
                          capture_output=True, text=True, cwd=ROOT)
  assert result.returncode == 0, result.stderr
  assert "carved 10 of 40 training documents as dev" in result.stdout
  with open(out / "eval_results_dev.json") as f:
    assert json.load(f)["micro_f1"] == 1.0
  assert not os.path.exists(out / "eval_results_test.json")  # No test split.
  bad = subprocess.run([sys.executable, "-m", "laco_tf.study.baselines", "--method=br",
                        f"--data_dir={tmp_path / 'none'}", f"--output_dir={out}"],
                       capture_output=True, text=True, cwd=ROOT)
  assert bad.returncode != 0
  assert bad.stderr.strip().splitlines()[-1].startswith("laco_tf.study.baselines: error: --data_dir=")


def test_balanced_weights_and_the_dev_choice_of_c_and_ngrams_match_a_brute_force_search(
    tmp_path, tiny_corpus):
  summary = baselines.run_baseline("br", tiny_corpus, str(tmp_path))
  splits = readers.read_corpus(tiny_corpus)
  labels = corpus_splits.label_list(splits["train"])
  y = baselines.multi_hot(splits["train"], labels)
  gold_dev = baselines.multi_hot(splits["dev"], labels)
  scores = {}
  for c in baselines.C_GRID:
    for n in baselines.NGRAM_GRID:
      vec = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, n))
      x = vec.fit_transform(e.text for e in splits["train"])
      x_dev = vec.transform(e.text for e in splits["dev"])
      pred = np.stack([LinearSVC(C=c, random_state=0, class_weight="balanced")
                       .fit(x, y[:, j]).decision_function(x_dev) > 0
                       for j in range(len(labels))], axis=1)
      scores[(c, n)] = f1_score(gold_dev, pred, average="micro", zero_division=0)
  best = max(scores.values())
  first_best = next(k for k, v in scores.items() if v == best)
  assert (summary["svm_c"], summary["ngram_max"]) == first_best
  assert summary["class_weight"] == "balanced"
  assert [(r["svm_c"], r["ngram_max"]) for r in summary["selection"]] == list(scores)
  for r in summary["selection"]:
    assert r["dev_micro_f1"] == pytest.approx(scores[(r["svm_c"], r["ngram_max"])], abs=1e-12)
  assert summary["eval_dev"]["micro_f1"] == pytest.approx(best, abs=1e-12)


def test_held_out_test_is_the_highest_numeric_ids_and_never_trained_on(tmp_path):
  data = tmp_path / "reuters"
  (data / "training").mkdir(parents=True)
  lines = []
  for i in (3, 20, 100, 7, 55, 9, 1000, 12, 81, 64):
    (data / "training" / str(i)).write_text(f"crude oil opec barrel n{i}" if i % 2 else
                                            f"profit dividend quarter n{i}")
    lines.append(f"training/{i} {'oil' if i % 2 else 'earn'}")
  (data / "cats.txt").write_text("\n".join(lines) + "\n")
  splits, _, _ = corpus_splits.load_splits(str(data), None, 0.25, 0, test_fraction=0.2)
  assert [e.guid for e in splits["test"]] == ["100", "1000"]
  assert len(splits["dev"]) == 2 and len(splits["train"]) == 6
  assert not {e.guid for e in splits["train"] + splits["dev"]} & {"100", "1000"}
  with_test = tmp_path / "with_test"
  with_test.mkdir()
  for split in ("train", "test"):
    (with_test / f"{split}.jsonl").write_text('{"text": "a b", "labels": ["x"]}\n' * 4)
  with pytest.raises(InputError, match="--test_fraction=0.2: .* has a test split already"):
    corpus_splits.load_splits(str(with_test), None, 0.25, 0, test_fraction=0.2)
