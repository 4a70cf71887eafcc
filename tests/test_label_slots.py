"""Label slots (--label_slots): K label tokens per training sequence, every label scored
in chunks of K at inference."""

import json

import numpy as np
import pytest
import tensorflow as tf

from laco_tf import runner
from laco_tf.data import input_packing, pipeline, samplers
from laco_tf.modeling import encoder, shortlist
from laco_tf.modeling.model import LacoModel
from tests.test_end_to_end import tiny_options


def test_slots_carry_every_positive_then_distinct_negatives_reproducibly():
  rng = np.random.default_rng(0)
  for trial in range(50):
    labels = np.zeros(20, np.float32)
    labels[rng.choice(20, size=rng.integers(0, 7), replace=False)] = 1
    seed = tf.constant([trial, 7], tf.int64)
    slots = samplers.sample_label_slots(tf.constant(labels), seed, 6).numpy()
    assert len(set(slots)) == 6 and list(slots) == sorted(slots)
    assert set(np.flatnonzero(labels)) <= set(slots)
    np.testing.assert_array_equal(slots, samplers.sample_label_slots(tf.constant(labels),
                                                                     seed, 6).numpy())
  # The negatives are a draw, not a fixed choice: other seeds carry other negatives.
  one = np.zeros(20, np.float32)
  one[3] = 1
  draws = {tuple(samplers.sample_label_slots(tf.constant(one), tf.constant([s, 0], tf.int64),
                                             4).numpy()) for s in range(20)}
  assert len(draws) > 10 and all(3 in d for d in draws)


def test_a_document_with_more_positives_than_slots_carries_k_of_them_drawn_anew():
  labels = np.zeros(12, np.float32)
  labels[[1, 2, 4, 5, 8, 9, 11]] = 1
  draws = [set(samplers.sample_label_slots(tf.constant(labels), tf.constant([s, 1], tf.int64),
                                           3).numpy()) for s in range(30)]
  assert all(d <= {1, 2, 4, 5, 8, 9, 11} and len(d) == 3 for d in draws)
  assert len({tuple(sorted(d)) for d in draws}) > 5


def test_slots_of_every_label_in_order_rebuild_the_full_joint_packing():
  # The third document is cut to the 8 wordpieces both packings leave it.
  docs = tf.ragged.constant([[40, 41, 42], [43], list(range(44, 54))], tf.int64)
  label_ids = [1, 2, 3, 4]
  full = input_packing.pack_joint_input(docs, label_ids, cls_id=9, sep_id=8,
                                        max_seq_length=15)
  alone = input_packing.pack_joint_input(docs, [], cls_id=9, sep_id=8, max_seq_length=10)
  features = {"input_ids": alone["input_ids"].to_tensor(),
              "token_type_ids": alone["token_type_ids"].to_tensor(),
              "attention_mask": tf.ones_like(alone["input_ids"]).to_tensor(),
              "doc_length": alone["doc_length"]}
  got = input_packing.append_label_slots(features, tf.constant([label_ids] * 3, tf.int64), 8)
  np.testing.assert_array_equal(got["input_ids"], full["input_ids"].to_tensor())
  np.testing.assert_array_equal(got["token_type_ids"], full["token_type_ids"].to_tensor())
  np.testing.assert_array_equal(got["attention_mask"],
                                tf.ones_like(full["input_ids"]).to_tensor())


def _features(batch=3, length=9):
  rng = np.random.default_rng(1)
  doc_length = np.array([7, 3, 5])[:batch]
  ids = np.zeros([batch, length], np.int32)
  for b, m in enumerate(doc_length):
    ids[b, :m + 2] = [22] + list(rng.integers(30, 60, m)) + [23]
  return {"input_ids": tf.constant(ids), "token_type_ids": tf.zeros_like(ids),
          "attention_mask": tf.constant((ids > 0).astype(np.int32)),
          "doc_length": tf.constant(doc_length, tf.int32)}


@pytest.mark.parametrize("task, join_layer", [("mltc", 0), ("both", 0), ("both", 1)])
def test_exhaustive_inference_equals_scoring_each_chunk_by_hand(task, join_layer, tiny_bert):
  # With a join layer, the chunks share the document's first block, computed once.
  n, k = 7, 3
  bert = encoder.load_bert(encoder.resolve_encoder(tiny_bert))
  model = LacoModel(bert, n, window_size=2, use_plcp=task == "both",
                    use_clcp=task == "both", label_slots=k,
                    label_token_ids=list(range(1, n + 1)), sep_id=23,
                    label_join_layer=join_layer)
  features = _features()
  got = model(features)["mlc_logits"].numpy()
  assert got.shape == (3, n)
  # Chunks [0, 3), [3, 6), and the last K labels [4, 7) for label 6.
  want = np.zeros([3, n], np.float32)
  for start, take in ((0, range(0, 3)), (3, range(3, 6)), (4, range(6, 7))):
    slots = tf.broadcast_to(tf.range(start, start + k)[tf.newaxis], [3, k])
    chunk = model({**features, "slot_labels": slots})["mlc_logits"].numpy()
    for j in take:
      want[:, j] = chunk[:, j - start]
  np.testing.assert_allclose(got, want, atol=1e-6)
  # Any K labels can be carried, not only consecutive ones: [batch, K] logits.
  slots = tf.constant([[0, 2, 5]] * 3)
  out = model({**features, "slot_labels": slots})["mlc_logits"]
  assert out.shape == (3, k)


def test_slots_at_or_above_the_label_count_are_the_full_model(tmp_path, tiny_bert,
                                                             tiny_corpus):
  runs = {}
  for slots in (0, 4, 9):
    out = tmp_path / f"slots{slots}"
    runner.run(tiny_options(tiny_corpus, tiny_bert, out, task="clcp", max_steps=3,
                            do_predict=False, label_slots=slots))
    with open(out / "predictions_dev.jsonl") as f:
      runs[slots] = [list(json.loads(l)["probabilities"].values()) for l in f]
  np.testing.assert_array_equal(runs[0], runs[4])
  np.testing.assert_array_equal(runs[0], runs[9])


def test_training_batches_carry_their_slots_targets_and_draws_per_epoch(tmp_path, tiny_bert,
                                                                       tiny_corpus):
  out = tmp_path / "run"
  runner.run(tiny_options(tiny_corpus, tiny_bert, out, task="both", max_steps=1,
                          do_eval=False, do_predict=False, label_slots=2))
  path = str(out / "tfrecords" / "train.tfrecord")
  aux = pipeline.AuxSampling(plcp=True, clcp=True, label_slots=2)

  def batches(epoch):
    full = pipeline.make_dataset(path, 4, 96, training=True, seed=3, epoch=epoch)
    ds = pipeline.make_dataset(path, 4, 96, training=True, seed=3, epoch=epoch, aux=aux)
    return next(iter(full)), next(iter(ds))
  full, first = batches(0)
  assert first["slot_labels"].shape == (96, 2) and first["labels"].shape == (96, 2)
  np.testing.assert_array_equal(
      first["labels"], tf.gather(full["labels"], first["slot_labels"], batch_dims=1))
  # Records hold the document alone: the model appends the label tokens.
  assert first["input_ids"].shape[1] == int(tf.reduce_max(first["doc_length"])) + 2
  assert first["clcp_given"].shape == (96, 2) and first["plcp_pairs"].numpy().max() <= 1
  _, again = batches(0)
  _, later = batches(1)
  np.testing.assert_array_equal(first["slot_labels"], again["slot_labels"])
  assert not np.array_equal(first["slot_labels"], later["slot_labels"])


def test_label_slots_set_the_text_budget_beside_k_labels(tmp_path, tiny_bert, tiny_corpus):
  out = tmp_path / "run"
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, out, max_seq_length=None,
                                    max_doc_tokens=30, label_slots=2, max_steps=1,
                                    do_predict=False))
  with open(out / "run_config.json") as f:
    config = json.load(f)
  assert config["max_seq_length"] == 30 + 2 + 3 and config["label_slots"] == 2
  with open(out / "tfrecords" / "metadata.json") as f:
    assert json.load(f)["max_seq_length"] == 32   # [CLS] + 30 + [SEP]
  assert summary["eval_dev"]["micro_f1"] >= 0


def test_shortlist_scores_are_tfidf_cosines_to_label_centroids():
  from sklearn.feature_extraction.text import TfidfVectorizer
  rng = np.random.default_rng(3)
  vocab, n = 50, 6
  docs = [rng.integers(5, 40, rng.integers(1, 12)) for _ in range(30)]
  labels = [rng.choice(n, rng.integers(1, 3), replace=False) for _ in range(30)]
  weights = shortlist.fit(docs, labels, vocab, n)
  # Brute force: scikit-learn's TF-IDF over the same tokens, centroids by hand.
  tfidf = TfidfVectorizer(analyzer=lambda d: [str(t) for t in d], sublinear_tf=True)
  x = tfidf.fit_transform(docs).toarray()
  y = np.zeros([30, n])
  for i, l in enumerate(labels):
    y[i, l] = 1
  centroids = y.T @ x
  centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
  # Wordpieces 40-49 were never seen in training: they weigh nothing.
  new_docs = [rng.integers(5, vocab, rng.integers(1, 12)) for _ in range(9)]
  x_new = tfidf.transform(new_docs).toarray()
  want = x_new @ centroids.T
  got = shortlist.LabelShortlist(weights).scores_of(new_docs, batch=4)
  np.testing.assert_allclose(got, want, atol=1e-5)
  top = shortlist.top_candidates(weights, new_docs, 3)
  np.testing.assert_array_equal(top, np.argsort(-got, axis=1, kind="stable")[:, :3])


def test_shortlist_recall_counts_gold_labels_inside_each_top_k():
  scores = np.array([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.1, 0.7]])
  gold = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
  # Top 2: {0, 2} holds label 0 of {0, 1}; {1, 3} holds label 3 of {2, 3}.
  assert shortlist.recall_at(scores, gold, 2) == 2 / 4
  rng = np.random.default_rng(0)
  scores, gold = rng.random([20, 9]), rng.random([20, 9]) < 0.3
  hits = sum(len(set(np.argsort(-s)[:4]) & set(np.flatnonzero(g))) for s, g in zip(scores, gold))
  assert shortlist.recall_at(scores, gold, 4) == pytest.approx(hits / gold.sum())


def test_hard_negatives_fill_free_slots_in_rank_order_after_every_positive():
  labels = np.zeros(10, np.float32)
  labels[[2, 7]] = 1
  candidates = tf.constant([7, 5, 1, 9, 2, 0])
  for s in range(5):
    slots = samplers.sample_label_slots(tf.constant(labels), tf.constant([s, 2], tf.int64), 5,
                                        candidates).numpy()
    # Positives 2 and 7, then the best wrong candidates 5, 1, 9.
    np.testing.assert_array_equal(slots, [1, 2, 5, 7, 9])
  slots = samplers.sample_label_slots(tf.constant(labels), tf.constant([0, 2], tf.int64), 8,
                                      tf.constant([7, 5])).numpy()
  assert {2, 5, 7} <= set(slots) and len(set(slots)) == 8


def test_shortlist_inference_scores_the_first_stage_top_k_and_misses_the_rest(tiny_bert):
  n, k = 7, 3
  rng = np.random.default_rng(2)
  docs = [rng.integers(30, 60, rng.integers(2, 8)) for _ in range(20)]
  weights = shortlist.fit(docs, [rng.choice(n, 2, replace=False) for _ in docs], 100, n)
  bert = encoder.load_bert(encoder.resolve_encoder(tiny_bert))
  model = LacoModel(bert, n, window_size=2, label_slots=k,
                    label_token_ids=list(range(1, n + 1)), sep_id=23,
                    shortlist=shortlist.LabelShortlist(weights), label_inference="shortlist")
  features = _features()
  got = model(features)["mlc_logits"].numpy()
  top = shortlist.top_labels(model.shortlist(features["input_ids"], features["doc_length"]),
                             k)
  carried = model({**features, "slot_labels": top})["mlc_logits"].numpy()
  for b in range(3):
    np.testing.assert_allclose(got[b, top[b].numpy()], carried[b], atol=1e-6)
    missed = np.setdiff1d(np.arange(n), top[b])
    assert np.all(got[b, missed] == -1e4) and np.all(tf.sigmoid(got[b, missed]) == 0)


def assert_serves_its_test_predictions(summary, out, corpus):
  """The run's SavedModel scores the 32 test texts of `corpus` over its 4 labels as
  `--do_predict` wrote them in `out`."""
  with open(out / "predictions_test.jsonl") as f:
    want = [list(json.loads(l)["probabilities"].values()) for l in f]
  with open(corpus + "/test.jsonl") as f:
    texts = [json.loads(l)["text"] for l in f]
  served = tf.saved_model.load(summary["export_dir"]).signatures["serving_default"](
      text=tf.constant(texts))["scores"].numpy()
  assert served.shape == (32, 4)
  np.testing.assert_allclose(served, want, atol=1e-5)


def test_a_slots_run_serves_its_predictions_and_switches_inference_later(tmp_path, tiny_bert,
                                                                       tiny_corpus):
  out = tmp_path / "run"
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, out, task="clcp", max_steps=4,
                                    do_eval=False, do_export=True, label_slots=3))
  assert_serves_its_test_predictions(summary, out, tiny_corpus)
  recall = summary["shortlist_recall_dev"]
  assert 0 <= recall <= 1
  # Inference may change between invocations: the first stage's top 3 of 4 labels.
  again = runner.run(tiny_options(tiny_corpus, tiny_bert, out, task="clcp", max_steps=4,
                                  do_train=False, do_eval=True, label_slots=3,
                                  label_inference="shortlist"))
  with open(out / "predictions_dev.jsonl") as f:
    probabilities = np.array([list(json.loads(l)["probabilities"].values()) for l in f])
  assert np.all(np.sum(probabilities == 0, axis=1) == 1)
  assert again["shortlist_recall_dev"] == recall


def test_a_model_without_joint_embedding_builds_for_more_labels_than_positions(tmp_path,
                                                                               tiny_bert):
  # The BERT baseline reads no label tokens: 200 labels beside a 128-position encoder.
  from laco_tf.data import tokenization  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling import build, label_tokens  # pylint: disable=import-outside-toplevel
  from tests.test_end_to_end import tiny_options  # pylint: disable=import-outside-toplevel
  opts = tiny_options("-", tiny_bert, tmp_path, task="mltc", joint_embedding=False,
                      cross_attention=False)
  spec = encoder.resolve_encoder(tiny_bert)
  labels = [f"l{i}" for i in range(200)]
  plan = label_tokens.plan_label_tokens(tokenization.read_vocab(spec.vocab_file),
                                        spec.vocab_size, len(labels), opts.joint_embedding)
  model = build.build_model(spec, labels, plan, None, opts, tf.distribute.get_strategy())
  out = model(_features(), training=False)["mlc_logits"]
  assert out.shape == (3, 200)


def test_a_slots_run_stopped_and_resumed_equals_the_uninterrupted_run(tmp_path, tiny_bert,
                                                                     tiny_corpus):
  # Slot draws and hard negatives are functions of (seed, epoch, document) and the first
  # stage is refitted identically: a resumed run carries the labels the straight one did.
  common = dict(task="both", do_eval=False, do_predict=False, label_slots=2,
                slot_negatives="shortlist", label_inference="shortlist")
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "full", max_steps=8, **common))
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "parted", max_steps=5, **common))
  second = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "parted", max_steps=8,
                                   **common))
  assert second["train"]["trained_steps"] == 3

  def variables(run):
    reader = tf.train.load_checkpoint(str(tmp_path / run / "checkpoints"))
    # The weights, their average and both optimizers' slots (the stop's own dev evaluation
    # and save move best_step and save_counter).
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k.split("/")[0] in ("model", "weight_average", "encoder_optimizer",
                                   "head_optimizer", "step")}
  full, parted = variables("full"), variables("parted")
  assert sorted(full) == sorted(parted) and len(full) == 236
  for name, value in full.items():
    np.testing.assert_allclose(parted[name], value, atol=1e-6, err_msg=name)
