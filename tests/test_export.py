"""SavedModel export: raw text in, and a fresh process gets the training-path probabilities."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from laco_tf import runner
from tests.test_end_to_end import tiny_options

ODD_TEXTS = [
    "Crème brûlée, naïve café — ÉLAN über Zürich!",
    "Stocks!!!??? ...rally;;; --- ((bond)) yield,,,",
    "日本語のテキスト 中文 oil 한국어 barrel",
    " ".join(["dollar euro oil gas match team"] * 60),  # Far longer than max_seq_length.
    "tab\tseparated\nnew line  and   spaces",
]
_RELOAD = """
import json, sys
import tensorflow as tf, tensorflow_text  # noqa: F401
texts = json.loads(sys.stdin.read())
fn = tf.saved_model.load(sys.argv[1]).signatures["serving_default"]
out = fn(text=tf.constant(texts))
print(json.dumps({"probabilities": out["probabilities"].numpy().tolist(),
                  "label_names": [x.decode() for x in out["label_names"].numpy()]}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_bert, tiny_corpus):
  corpus = tmp_path_factory.mktemp("odd_corpus")
  for split in ("train", "dev"):
    os.symlink(os.path.join(tiny_corpus, f"{split}.jsonl"), corpus / f"{split}.jsonl")
  with open(os.path.join(tiny_corpus, "test.jsonl")) as f:
    test = [json.loads(l) for l in f][:6]
  test += [{"id": f"odd-{i}", "text": t, "labels": ["markets"]} for i, t in enumerate(ODD_TEXTS)]
  with open(corpus / "test.jsonl", "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in test)
  out = tmp_path_factory.mktemp("export_run")
  summary = runner.run(tiny_options(str(corpus), tiny_bert, out, task="clcp", max_steps=12,
                                    do_eval=False, do_export=True))
  return summary, test, out


def _reload_in_fresh_process(export_dir, texts):
  result = subprocess.run([sys.executable, "-c", _RELOAD, export_dir], input=json.dumps(texts),
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_reloaded_savedmodel_reproduces_training_path_probabilities(exported):
  summary, test, out = exported
  texts = [r["text"] for r in test] + [""]
  served = _reload_in_fresh_process(summary["export_dir"], texts)
  labels = (out / "labels.txt").read_text().split()
  assert served["label_names"] == labels
  with open(out / "predictions_test.jsonl") as f:
    want = [list(json.loads(l)["probabilities"].values()) for l in f]
  got = np.array(served["probabilities"])
  assert got.shape == (len(texts), len(labels))
  # Odd texts included: same ids in the graph as in TFRecord conversion, same numbers.
  np.testing.assert_allclose(got[:len(test)], np.array(want), atol=1e-5)
  assert np.all(np.isfinite(got[-1]))  # The empty string is served too.


def test_export_writes_label_list_and_metadata_assets(exported):
  summary, _, out = exported
  extra = os.path.join(summary["export_dir"], "assets.extra")
  with open(os.path.join(extra, "labels.txt")) as f:
    assert f.read() == (out / "labels.txt").read_text()
  with open(os.path.join(extra, "laco_metadata.json")) as f:
    meta = json.load(f)
  assert meta["task"] == "clcp" and meta["max_seq_length"] == 48
  assert not os.path.exists(summary["export_dir"] + ".tmp")
