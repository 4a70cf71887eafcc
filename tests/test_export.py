"""SavedModel export: raw text in, and a fresh process gets the training-path probabilities.

Run for every way of getting an encoder and label tokens: a Hugging Face directory
(uncased and cased), Google's TF1 release, and a label set larger than the vocabulary's
unused slots (grown embeddings, name-initialised).
"""

import json
import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from laco_tf import runner
from laco_tf.modeling import encoder
from laco_tf.errors import InputError
from tests.conftest import tiny_vocab
from tests.test_encoders import write_google_release
from tests.test_end_to_end import tiny_options

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ODD_TEXTS = [
    "Crème brûlée, naïve café — ÉLAN über Zürich!",
    "Stocks!!!??? ...rally;;; --- ((bond)) yield,,,",
    "日本語のテキスト 中文 oil 한국어 barrel",
    " ".join(["dollar euro oil gas match team"] * 60),  # Far longer than max_seq_length.
    "tab\tseparated\nnew line  and   spaces",
]
_RELOAD = """
import json, os, sys
import tensorflow as tf, tensorflow_text  # noqa: F401
from tensorflow.core.protobuf import saved_model_pb2
texts = json.loads(sys.stdin.read())
signatures = tf.saved_model.load(sys.argv[1]).signatures
out = signatures["serving_default"](text=tf.constant(texts))
examples = [tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
    bytes_list=tf.train.BytesList(value=[t.encode()]))})).SerializeToString() for t in texts]
classified = signatures["classify"](inputs=tf.constant(examples))
proto = saved_model_pb2.SavedModel()
with open(os.path.join(sys.argv[1], "saved_model.pb"), "rb") as f:
  proto.ParseFromString(f.read())
print(json.dumps({
    "outputs": {k: v.numpy().tolist() if v.dtype != tf.string else
                [[x.decode() for x in row] for row in v.numpy()] for k, v in out.items()},
    "classify": {"scores": classified["scores"].numpy().tolist(),
                 "classes": [[x.decode() for x in r] for r in classified["classes"].numpy()]},
    "methods": {k: v.method_name for k, v in proto.meta_graphs[0].signature_def.items()
                if not k.startswith("__")}}))
"""


def _write_corpus(directory, records):
  os.makedirs(directory, exist_ok=True)
  for split, rows in records.items():
    with open(os.path.join(directory, f"{split}.jsonl"), "w", encoding="utf-8") as f:
      f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
  return str(directory)


def _odd_test_split(first_label):
  return [{"id": f"odd-{i}", "text": t, "labels": [first_label]} for i, t in enumerate(ODD_TEXTS)]


def _four_label_corpus(directory, tiny_corpus):
  records = {}
  for split in ("train", "dev", "test"):
    with open(os.path.join(tiny_corpus, f"{split}.jsonl")) as f:
      records[split] = [json.loads(l) for l in f]
  records["test"] = records["test"][:6] + _odd_test_split("markets")
  return _write_corpus(directory, records)


def _many_label_corpus(directory, n_labels=25):
  """More labels than the tiny vocabulary's 20 unused slots; each has its own words."""
  words = [w for w in tiny_vocab() if w.isalpha() and len(w) > 2]
  rng = random.Random(0)
  labels = [f"topic-{words[3 * i]}" for i in range(n_labels)]

  def doc(i):
    chosen = rng.sample(range(n_labels), rng.randint(1, 2))
    text = " ".join(rng.choice(words[3 * c:3 * c + 3]) for c in chosen for _ in range(4))
    return {"id": str(i), "text": text, "labels": [labels[c] for c in chosen]}
  return _write_corpus(directory, {"train": [doc(i) for i in range(60)],
                                   "dev": [doc(i) for i in range(20)],
                                   "test": [doc(i) for i in range(6)] +
                                           _odd_test_split(labels[0])})


def _reload_in_fresh_process(export_dir, texts):
  result = subprocess.run([sys.executable, "-c", _RELOAD, export_dir], input=json.dumps(texts),
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
  return json.loads(result.stdout.strip().splitlines()[-1])


# Variants whose mechanism a kept sibling covers run with -m slow (CI's time budget).
@pytest.mark.parametrize("setup", [
    "huggingface", pytest.param("cased", marks=pytest.mark.slow), "google",
    pytest.param("grown_vocab", marks=pytest.mark.slow),
    pytest.param("no_je", marks=pytest.mark.slow),
    pytest.param("bert_baseline", marks=pytest.mark.slow), "label_slots"])
def test_reloaded_savedmodel_reproduces_training_path_probabilities(setup, tmp_path, tiny_bert,
                                                                    tiny_corpus):
  overrides = {}
  if setup == "grown_vocab":
    corpus = _many_label_corpus(tmp_path / "corpus")
    overrides = {"label_init": "name", "max_seq_length": 64}
  elif setup == "label_slots":
    # 25 labels, 8 slots: the first stage's top 8 scored (exhaustive inference is served in
    # tests/test_label_slots.py), hard negatives in training.
    corpus = _many_label_corpus(tmp_path / "corpus")
    overrides = {"label_slots": 8, "max_seq_length": None, "max_doc_tokens": 24,
                 "label_inference": "shortlist", "slot_negatives": "shortlist"}
  else:
    corpus = _four_label_corpus(tmp_path / "corpus", tiny_corpus)
  if setup == "cased":
    overrides["do_lower_case"] = False
  if setup == "no_je":
    overrides["joint_embedding"] = False
  if setup == "bert_baseline":
    overrides.update(joint_embedding=False, cross_attention=False, pooling="mean")
  if setup == "google":
    bert = encoder.load_bert(encoder.resolve_encoder(tiny_bert))
    release = write_google_release(tmp_path / "release", bert,
                                   os.path.join(tiny_bert, "vocab.txt"))
    overrides.update(bert_config_file=os.path.join(release, "bert_config.json"),
                     vocab_file=os.path.join(release, "vocab.txt"),
                     init_checkpoint=os.path.join(release, "bert_model.ckpt"))
  out = tmp_path / "run"
  summary = runner.run(tiny_options(corpus, "" if setup == "google" else tiny_bert, out,
                                    task="mltc" if setup == "bert_baseline" else "clcp",
                                    max_steps=6, do_eval=False, do_export=True,
                                    **overrides))
  with open(os.path.join(corpus, "test.jsonl")) as f:
    texts = [json.loads(l)["text"] for l in f] + [""]
  assert summary["export_dir"] == str(out / "export" / "1")
  served = _reload_in_fresh_process(summary["export_dir"], texts)
  labels = (out / "labels.txt").read_text().split()
  assert served["methods"] == {"serving_default": "tensorflow/serving/predict",
                               "classify": "tensorflow/serving/classify"}
  # Every output is batch-major (TF Serving's row format needs it).
  assert set(served["outputs"]) == {"scores", "labels", "classes"}
  assert all(len(v) == len(texts) for v in served["outputs"].values())
  assert served["outputs"]["classes"] == [labels] * len(texts)
  assert served["classify"]["classes"] == [labels] * len(texts)
  np.testing.assert_array_equal(served["classify"]["scores"], served["outputs"]["scores"])
  with open(out / "predictions_test.jsonl") as f:
    want = [list(json.loads(l)["probabilities"].values()) for l in f]
  got = np.array(served["outputs"]["scores"])
  assert got.shape == (len(texts), len(labels))
  # Odd texts included: same ids in the graph as in TFRecord conversion, same numbers.
  np.testing.assert_allclose(got[:-1], np.array(want), atol=1e-5)
  assert np.all(np.isfinite(got[-1]))  # The empty string is served too.
  extra = os.path.join(summary["export_dir"], "assets.extra")
  with open(os.path.join(extra, "labels.txt")) as f:
    assert f.read() == (out / "labels.txt").read_text()
  with open(os.path.join(extra, "laco_metadata.json")) as f:
    meta = json.load(f)
  assert meta["encoder"]["kind"] == (
      "google" if setup == "google" else "huggingface")
  assert meta["encoder"]["do_lower_case"] is (setup != "cased")
  assert meta["label_token_scheme"] == {"grown_vocab": "appended", "label_slots": "appended",
                                        "no_je": "none",
                                        "bert_baseline": "none"}.get(setup, "unused")
  assert os.listdir(out / "export") == ["1"]  # no temporary folder left


def test_resuming_with_a_different_encoder_is_refused(tmp_path, tiny_bert, tiny_corpus):
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_steps=1,
                          do_predict=False))
  with pytest.raises(InputError, match=r"holds a run with different settings \(do_lower_case: "
                     r"None -> False, encoder: \{'do_lower_case': True.*'do_lower_case': False\}"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_steps=2,
                            do_lower_case=False, do_predict=False))


def test_serving_handles_empty_batches_blank_texts_and_invalid_utf8(tmp_path, tiny_bert,
                                                                     tiny_corpus):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "run", task="mltc",
                                    max_steps=2, do_eval=False, do_predict=False,
                                    do_export=True, at_least_one_label=True))
  serve = tf.saved_model.load(summary["export_dir"]).signatures["serving_default"]
  empty = serve(text=tf.constant([], tf.string))
  assert {k: v.shape for k, v in empty.items()} == {"scores": (0, 4), "labels": (0, 4),
                                                     "classes": (0, 4)}
  out = serve(text=tf.constant(["", "   \t", b"oil \xff\xfe price", "oil price"]))
  probs, labels = out["scores"].numpy(), out["labels"].numpy()
  np.testing.assert_array_equal(probs[:2], 0.0)
  assert not labels[:2].any()  # not even with --at_least_one_label
  assert np.all((probs[2:] > 0) & (probs[2:] < 1)) and labels[2:].any(axis=1).all()


def test_rest_bodies_of_both_formats_have_a_row_per_text_and_the_signatures_values(
    tmp_path, tiny_bert, tiny_corpus):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from laco_tf.serving import serving_rest  # pylint: disable=import-outside-toplevel
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "run", task="mltc",
                                    max_steps=2, do_eval=False, do_predict=False,
                                    do_export=True))
  serve = tf.saved_model.load(summary["export_dir"]).signatures["serving_default"]
  labels = (tmp_path / "run" / "labels.txt").read_text().split()
  texts = ["oil price rises", "the team won", "rates"]
  rows = serving_rest.predict_request(texts)
  assert rows == {"instances": [{"text": t} for t in texts]}
  columns = serving_rest.predict_request(texts, row_format=False)
  assert columns == {"inputs": {"text": texts}}
  for body, row_format in ((rows, True), (columns, False)):
    out = serve(text=tf.constant(serving_rest.request_texts(json.loads(json.dumps(body)))))
    reply = json.loads(json.dumps(serving_rest.predict_response(out, row_format)))
    if row_format:
      assert len(reply["predictions"]) == len(texts)
      for i, row in enumerate(reply["predictions"]):
        assert set(row) == {"scores", "labels", "classes"} and row["classes"] == labels
        assert row["scores"] == pytest.approx(out["scores"].numpy()[i].tolist())
        assert row["labels"] == out["labels"].numpy()[i].tolist()
    else:
      assert reply["outputs"]["classes"] == [labels] * len(texts)
      assert np.array(reply["outputs"]["scores"]).shape == (len(texts), len(labels))
      assert reply["outputs"]["labels"] == out["labels"].numpy().tolist()
  # What the server refuses: an output that is not batch-major (the old [n] label list).
  with pytest.raises(ValueError, match="first dimension to be the batch"):
    serving_rest.predict_response({"scores": np.zeros([3, 4]),
                                   "label_names": np.array([b"a", b"b", b"c", b"d"])})


def test_python_classifier_gives_the_served_decisions_in_batches(tmp_path, tiny_bert,
                                                                  tiny_corpus):
  import laco_tf  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  summary = laco_tf.train(laco_tf.RunOptions(**{
      **vars(tiny_options(tiny_corpus, tiny_bert, tmp_path / "run", task="mltc", max_steps=4,
                          do_eval=True, do_predict=False, do_export=True))}))
  clf = laco_tf.Classifier.load(summary["export_dir"])
  assert clf.label_names == (tmp_path / "run" / "labels.txt").read_text().split()
  texts = ["oil price rises", "the team won the match", "rates cut", "", "energy markets"]
  served = tf.saved_model.load(summary["export_dir"]).signatures["serving_default"](
      text=tf.constant(texts))
  probs = clf.predict_proba(texts, batch_size=2)  # three batches
  np.testing.assert_allclose(probs, served["scores"].numpy(), atol=1e-6)
  decided = served["labels"].numpy()
  for row, p, d in zip(clf.predict(texts, batch_size=2), probs, decided):
    assert {x["label"] for x in row} == {clf.label_names[j] for j in np.flatnonzero(d)}
    assert [x["score"] for x in row] == sorted((x["score"] for x in row), reverse=True)
  low = clf.predict(texts, threshold=0.001)
  n = len(clf.label_names)
  assert [len(r) for r in low] == [n, n, n, 0, n]  # "" has probability 0
  assert clf.predict_proba([]).shape == (0, len(clf.label_names))
  with pytest.raises(InputError, match="expected a list of strings"):
    clf.predict("one string")
  with pytest.raises(InputError, match=r"^texts: expected a list of strings, got NoneType$"):
    clf.predict(None)
  # top_k ranks every label (None) or the k best by score, equal scores in label order,
  # whatever the thresholds.
  for k in (None, 2):
    for row, p in zip(clf.predict(texts, top_k=k), probs):
      expected = sorted(range(n), key=lambda j: (-p[j], j))[:k]
      assert [x["label"] for x in row] == [clf.label_names[j] for j in expected]
      np.testing.assert_allclose([x["score"] for x in row], p[expected], atol=1e-6)
  for bad in (0, -1, 1.5, True, "3"):
    with pytest.raises(InputError, match=r"^top_k=.*: expected a positive integer, or None"):
      clf.predict(texts, top_k=bad)
  with pytest.raises(InputError, match=r"^threshold=0.5 and top_k=2: give one of them"):
    clf.predict(texts, threshold=0.5, top_k=2)
  # Run again with the same settings, nothing is scored or exported again; another decision
  # rule scores dev again and exports a new version; loading the base takes the newest.
  results = [tmp_path / "run" / n for n in ("eval_results_dev.json", "predictions_dev.jsonl")]
  written = [(p.stat().st_mtime_ns, p.read_bytes()) for p in results]
  same = laco_tf.train(laco_tf.RunOptions(**{
      **vars(tiny_options(tiny_corpus, tiny_bert, tmp_path / "run", task="mltc", max_steps=4,
                          do_predict=False, do_export=True))}))
  assert [(p.stat().st_mtime_ns, p.read_bytes()) for p in results] == written
  assert same["eval_dev"] == summary["eval_dev"]
  again = laco_tf.train(laco_tf.RunOptions(**{
      **vars(tiny_options(tiny_corpus, tiny_bert, tmp_path / "run", task="mltc", max_steps=4,
                          do_train=False, do_eval=True, do_predict=False, do_export=True,
                          threshold=0.3))}))
  base = str(tmp_path / "run" / "export")
  assert (summary["export_dir"], same["export_dir"], again["export_dir"]) == (
      base + "/1", base + "/1", base + "/2")
  assert sorted(os.listdir(base)) == ["1", "2"]
  assert again["eval_dev"]["threshold"] == 0.3 and results[0].stat().st_mtime_ns != written[0][0]
  newest = laco_tf.Classifier.load(base)
  np.testing.assert_allclose(newest.predict_proba(texts), probs, atol=1e-6)
  with pytest.raises(InputError, match="neither a SavedModel nor an export base"):
    laco_tf.Classifier.load(str(tmp_path / "run"))


def test_chunked_serving_returns_each_texts_probabilities_in_request_order(tmp_path, tiny_bert,
                                                                           tiny_corpus):
  """The export sorts a request by length and runs chunks of --serving_chunk_size texts,
  each padded to its own longest; the outputs equal one padded batch and one text at a time."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  chunked = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "run", task="clcp",
                                    max_steps=2, do_eval=False, do_predict=False,
                                    do_export=True, serving_chunk_size=3))
  whole = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "run", task="clcp",
                                  max_steps=2, do_train=False, do_eval=False, do_predict=False,
                                  do_export=True, serving_chunk_size=0))
  with open(os.path.join(chunked["export_dir"], "assets.extra", "laco_metadata.json")) as f:
    assert json.load(f)["serving_chunk_size"] == 3
  # Lengths out of order, a blank text, and 8 texts: chunks of 3, 3 and 2.
  texts = ["oil", ODD_TEXTS[3], "", "the team won the match", ODD_TEXTS[0], "rates cut",
           "oil price rises as the team won", ODD_TEXTS[1]]
  serve = {name: tf.saved_model.load(s["export_dir"]).signatures["serving_default"]
           for name, s in (("chunked", chunked), ("whole", whole))}
  got = {name: f(text=tf.constant(texts)) for name, f in serve.items()}
  one_at_a_time = np.concatenate([serve["whole"](text=tf.constant([t]))["scores"].numpy()
                                  for t in texts])
  assert got["chunked"]["scores"].shape == (len(texts), 4)
  np.testing.assert_allclose(got["chunked"]["scores"].numpy(), got["whole"]["scores"].numpy(),
                             atol=1e-6)
  np.testing.assert_allclose(got["chunked"]["scores"].numpy(), one_at_a_time, atol=1e-6)
  np.testing.assert_array_equal(got["chunked"]["labels"].numpy(), got["whole"]["labels"].numpy())
  assert len(set(np.round(one_at_a_time[:, 0], 6))) >= 6  # the texts' rows really differ
  small = serve["chunked"](text=tf.constant(texts[:3]))["scores"].numpy()  # one chunk
  np.testing.assert_allclose(small, one_at_a_time[:3], atol=1e-6)
  assert serve["chunked"](text=tf.constant([], tf.string))["scores"].shape == (0, 4)


class _FakeModel(tf.Module):
  """Stands in for LacoModel in export tests that need no training: logits from the
  document length and a variable (each export's own `tag`), so versions can be told apart."""

  def __init__(self, num_labels, tag=0.0):
    super().__init__()
    self.bias = tf.Variable(tf.fill([num_labels], float(tag)))

  def __call__(self, features, training=False):
    length = tf.cast(features["doc_length"], tf.float32)[:, tf.newaxis]
    return {"mlc_logits": 0.1 * length + self.bias}

  def dropout_step_detached(self):
    import contextlib  # pylint: disable=import-outside-toplevel
    return contextlib.nullcontext()


def fake_serving_module(directory, tag=0.0):
  """A LacoServingModule over `_FakeModel`, with labels named after `tag`."""
  from laco_tf.serving import export  # pylint: disable=import-outside-toplevel
  vocab = os.path.join(directory, "vocab.txt")
  with open(vocab, "w", encoding="utf-8") as f:
    f.writelines(t + "\n" for t in tiny_vocab())
  labels = [f"t{tag:g}-{name}" for name in ("oil", "sport", "rates")]
  module = export.LacoServingModule(_FakeModel(3, tag), vocab, True, labels, [1, 2, 3], 32,
                                    chunk_size=0)
  return module, {"labels": labels, "tag": tag}


@pytest.fixture(scope="module")
def fake_export(tmp_path_factory):
  """(module, metadata, version folder): one traced fake module, exported once."""
  from laco_tf.serving import export  # pylint: disable=import-outside-toplevel
  directory = tmp_path_factory.mktemp("fake_export")
  module, metadata = fake_serving_module(str(directory), 1.0)
  return module, metadata, export.export_saved_model(module, str(directory / "export"),
                                                     metadata)


_EXPORT_LOOP = """
import json, os, sys, time
sys.path.insert(0, os.getcwd())
from laco_tf.serving import export
from tests.test_export import fake_serving_module
base, tag, rounds, ready, go = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:]
os.makedirs(ready + ".d")
module, metadata = fake_serving_module(ready + ".d", tag)
export.export_saved_model(module, ready + ".d", metadata)  # traced: later saves are quick
open(ready, "w").close()
while not os.path.exists(go):
  time.sleep(0.01)
print(json.dumps([export.export_saved_model(module, base, metadata) for _ in range(rounds)]))
"""


def _version_tag(version_dir, load=False):
  """The tag of a version, after checking that its graph, variables and metadata are of
  one save (and, with `load`, that `Classifier.load` serves them)."""
  with open(os.path.join(version_dir, "assets.extra", "laco_metadata.json")) as f:
    tag = json.load(f)["tag"]
  names = [f"t{tag:g}-{n}" for n in ("oil", "sport", "rates")]
  with open(os.path.join(version_dir, "saved_model.pb"), "rb") as f:
    graph = f.read()
  assert names[0].encode() in graph and b"t%g-oil" % (3 - tag) not in graph
  variables = tf.train.load_checkpoint(os.path.join(version_dir, "variables", "variables"))
  values = [variables.get_tensor(k) for k, shape in variables.get_variable_to_shape_map().items()
            if shape == [3]]
  np.testing.assert_array_equal(values, [[tag] * 3])
  assert sorted(os.listdir(os.path.join(version_dir, "variables"))) == [
      "variables.data-00000-of-00001", "variables.index"]  # no variables_temp left inside
  if load:
    from laco_tf.serving.classifier import Classifier  # pylint: disable=import-outside-toplevel
    clf = Classifier.load(version_dir)
    assert clf.label_names == names
    np.testing.assert_allclose(clf.predict_proba(["oil"]),  # sigmoid(0.1 * 1 wordpiece + tag)
                               np.full((1, 3), 1 / (1 + np.exp(-(0.1 + tag)))), rtol=1e-5)
  return tag


def test_concurrent_exports_into_one_base_each_get_a_whole_version_of_their_own(tmp_path,
                                                                               fake_export):
  """Two processes export into one base at once: every export becomes its own complete
  version (graph, variables and metadata of one save), numbered 1..n, nothing left over."""
  from laco_tf.serving import export  # pylint: disable=import-outside-toplevel
  module, metadata, _ = fake_export  # tag 1, traced already
  base, rounds = str(tmp_path / "export"), 3
  ready, go = tmp_path / "ready", tmp_path / "go"
  other = subprocess.Popen([sys.executable, "-c", _EXPORT_LOOP, base, "2", str(rounds),
                            str(ready), str(go)], stdout=subprocess.PIPE, text=True,
                           cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
  while not ready.exists() and other.poll() is None:
    time.sleep(0.05)
  go.touch()  # Both processes export at once from here.
  mine = [export.export_saved_model(module, base, metadata) for _ in range(rounds)]
  theirs = json.loads(other.communicate(timeout=300)[0].strip().splitlines()[-1])
  assert other.returncode == 0
  assert sorted(os.listdir(base), key=int) == [str(i) for i in range(1, 2 * rounds + 1)]
  assert sorted(mine + theirs) == sorted(os.path.join(base, n) for n in os.listdir(base))
  assert [_version_tag(p) for p in mine] == [1.0] * rounds
  assert [_version_tag(p, load=p == theirs[-1]) for p in theirs] == [2.0] * rounds


def test_an_export_removes_abandoned_temporary_folders_but_not_a_live_writers(tmp_path,
                                                                              fake_export):
  import fcntl  # pylint: disable=import-outside-toplevel
  from laco_tf.serving import export, export_versions  # pylint: disable=import-outside-toplevel
  module, metadata, _ = fake_export
  base = tmp_path / "export"
  for name in (".tmp-4242-dead", ".tmp-live"):  # a killed export's, and one being written
    (base / name / "variables").mkdir(parents=True)
    (base / name / "saved_model.pb").write_text("partial")
  live = os.open(base / ".tmp-live", os.O_RDONLY)
  try:
    fcntl.flock(live, fcntl.LOCK_EX)  # as its writer holds it
    assert export.export_saved_model(module, str(base), metadata) == str(base / "1")
    assert sorted(os.listdir(base)) == [".tmp-live", "1"]
    assert (base / ".tmp-live" / "saved_model.pb").read_text() == "partial"
  finally:
    os.close(live)

  def failing_write(tmp):
    (tmp_path / "written").write_text(tmp)
    with open(os.path.join(tmp, "saved_model.pb"), "w") as f:
      f.write("partial")
    raise RuntimeError("write failed")
  with pytest.raises(RuntimeError, match="write failed"):
    export_versions.publish_version(str(base), failing_write)
  # Its own folder removed, and .tmp-live, no longer held, as abandoned; no version added.
  assert not os.path.exists((tmp_path / "written").read_text())
  assert sorted(os.listdir(base)) == ["1"]
  assert oct(os.stat(base / "1").st_mode & 0o777) == oct(0o777 & ~_umask())


def _umask():
  mask = os.umask(0)
  os.umask(mask)
  return mask


def test_signatures_refuse_a_tensor_with_more_texts_than_rows(fake_export):
  """TF does not enforce a signature's [None]: the graph itself refuses [2, 2] (which
  would answer 4 rows for 2) and a scalar, and reads [n, 1] as n texts."""
  signatures = tf.saved_model.load(fake_export[2]).signatures
  serve, classify = signatures["serving_default"], signatures["classify"]
  for bad in ([["oil", "rates"], ["team", "match"]], "oil"):
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"text: expected a 1-D tensor of strings \[batch\], one text per row"):
      serve(text=tf.constant(bad))
  example = tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
      bytes_list=tf.train.BytesList(value=[b"oil"]))})).SerializeToString()
  # Refused either by our check or by ParseExample itself, whichever op the runtime
  # reaches first (both run on the fed tensor; the order between them is not fixed).
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r"inputs: expected a 1-D tensor|Expected serialized to be a scalar "
                           r"or vector, got shape: \[2,2\]"):
    classify(inputs=tf.constant([[example, example], [example, example]]))
  flat = serve(text=tf.constant(["oil", "team won the match"]))["scores"].numpy()
  column = serve(text=tf.constant([["oil"], ["team won the match"]]))["scores"].numpy()
  np.testing.assert_array_equal(column, flat)
  assert flat.shape == (2, 3)


def test_classifier_refuses_nested_texts_and_thresholds_outside_0_1_as_the_cli_does(
    fake_export, tmp_path):
  from laco_tf import run_settings  # pylint: disable=import-outside-toplevel
  from laco_tf.serving.classifier import Classifier  # pylint: disable=import-outside-toplevel
  clf = Classifier.load(fake_export[2])
  with pytest.raises(InputError, match=r"^texts\[0\]: expected a string, got list \(texts "
                     r"must be a flat list of strings\)$"):
    clf.predict([["oil", "rates"], ["team", "match"]])
  for bad in (float("nan"), -1, 0, 1.0, 2, True, "0.5", float("inf")):
    with pytest.raises(InputError) as refused:
      clf.predict(["oil"], threshold=bad)
    assert str(refused.value) == f"threshold={bad!r}: expected a number in (0, 1)"
  with pytest.raises(InputError, match=r"^--threshold=-1.0: expected a number in \(0, 1\)$"):
    run_settings.validate(run_settings.RunOptions(data_dir=str(tmp_path),
                                                  output_dir=str(tmp_path), threshold=-1.0))
  assert [[x["label"] for x in row] for row in clf.predict(["oil"], threshold=0.01)] == [
      clf.label_names]


@pytest.mark.parametrize("damage", ["truncated_data", "garbage_index"])
def test_loading_an_export_with_damaged_variables_is_one_input_error(damage, tmp_path,
                                                                     fake_export):
  import shutil  # pylint: disable=import-outside-toplevel
  from laco_tf.serving.classifier import Classifier  # pylint: disable=import-outside-toplevel
  version = str(tmp_path / "1")
  shutil.copytree(fake_export[2], version)
  variables = os.path.join(version, "variables")
  if damage == "truncated_data":
    with open(os.path.join(variables, "variables.data-00000-of-00001"), "r+b") as f:
      f.truncate(4)
  else:
    with open(os.path.join(variables, "variables.index"), "wb") as f:
      f.write(b"xx")
  with pytest.raises(InputError, match=f"^{version}: not a complete LACO-TF SavedModel "
                     r"\((IndexError|OpError): [^\n]+\); export it again$"):
    Classifier.load(str(tmp_path))  # the base: its newest version


@pytest.mark.parametrize("where", ["file", "parent_file", "default_base"])
def test_an_export_dir_that_cannot_be_a_folder_is_refused_before_anything_is_written(
    where, tmp_path, tiny_bert, tiny_corpus):
  out = tmp_path / "run"
  if where == "default_base":  # OUTPUT_DIR/export, the base without --export_dir
    out.mkdir()
    taken = export_dir = out / "export"
    flag, given = "--output_dir", out
  else:
    taken = tmp_path / "taken"
    export_dir = taken if where == "file" else taken / "export"
    flag, given = "--export_dir", export_dir
  taken.write_text("a file")
  before = sorted(os.listdir(tmp_path))
  with pytest.raises(InputError, match=f"^{flag}={given}: {taken} is a file; expected the "
                     f"export folder {export_dir} to be a folder or a new path$"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, out, task="mltc", max_steps=1,
                            do_export=True,
                            export_dir=None if where == "default_base" else str(export_dir)))
  assert sorted(os.listdir(tmp_path)) == before  # not even the output directory
  assert os.listdir(out) == ["export"] if out.exists() else True


_API_SCRIPT = """
import sys
sys.path.insert(0, sys.argv[2])
import laco_tf
clf = laco_tf.Classifier.load(sys.argv[1])
print(clf.predict(["oil"], top_k=1)[0][0]["label"])
"""


def test_the_python_api_loads_and_predicts_with_nothing_on_stderr(fake_export):
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  result = subprocess.run([sys.executable, "-c", _API_SCRIPT, fake_export[2], ROOT],
                          capture_output=True, text=True, env=env, check=False)
  assert result.returncode == 0, result.stderr
  assert result.stdout.split() == ["t1-oil"]
  assert result.stderr == ""
