"""Speed options: length bucketing, precision, XLA and steps_per_loop change speed, not results."""

import json

import numpy as np
import pytest
import tensorflow as tf

from laco_tf import runner
from laco_tf.data import corpus_splits, pipeline, readers, tfrecords, tokenization
from laco_tf.modeling import encoder, precision
from laco_tf.errors import InputError
from laco_tf.training import distribution, microbatches
from tests.test_end_to_end import tiny_options


def _history(output_dir):
  with open(output_dir / "history.jsonl") as f:
    return [json.loads(line) for line in f]


def _dev_probabilities(output_dir):
  with open(output_dir / "predictions_dev.jsonl") as f:
    return np.array([list(json.loads(line)["probabilities"].values()) for line in f])


def test_bucketed_order_takes_every_example_once_in_batches_of_similar_length():
  rng = np.random.default_rng(0)
  lengths = rng.integers(5, 300, size=1003)
  order = pipeline.bucketed_order(lengths, batch_size=16, seed=4, epoch=2, window_batches=10)
  assert sorted(order.tolist()) == list(range(1003))
  # Seeded: the same (seed, epoch) gives the same order, another epoch another one.
  np.testing.assert_array_equal(
      order, pipeline.bucketed_order(lengths, 16, seed=4, epoch=2, window_batches=10))
  assert not np.array_equal(order, pipeline.bucketed_order(lengths, 16, 4, 3, 10))
  batches = [lengths[order[i:i + 16]] for i in range(0, 1003, 16)]
  assert [len(b) for b in batches] == [16] * 62 + [11]  # only the last batch is short

  def padding(bs):
    return 1 - sum(b.sum() for b in bs) / sum(b.max() * len(b) for b in bs)
  shuffled = rng.permutation(1003)
  random_batches = [lengths[shuffled[i:i + 16]] for i in range(0, 1003, 16)]
  assert padding(batches) < 0.1 < 0.3 < padding(random_batches)
  # Batches are shuffled across windows: their maxima do not rise in window order.
  maxima = [b.max() for b in batches[:-1]]
  assert maxima != sorted(maxima)


def test_bucketed_dataset_yields_each_record_once_per_epoch_and_resumes_by_skipping(
    tmp_path, tiny_bert, tiny_corpus):
  spec = encoder.resolve_encoder(tiny_bert)
  splits = readers.read_corpus(tiny_corpus)
  labels = corpus_splits.label_list(splits["train"])
  ids = tokenization.label_token_ids(tokenization.read_vocab(spec.vocab_file), len(labels))
  tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 48)
  path = str(tmp_path / "train.tfrecord")
  aux = pipeline.AuxSampling(clcp=True)

  def epoch(e, skip=0):
    ds = pipeline.make_dataset(path, len(labels), 10, True, seed=5, epoch=e, aux=aux,
                               bucketing=True).skip(skip)
    return [{k: v.numpy() for k, v in b.items()} for b in ds]
  first = epoch(0)
  indices = np.concatenate([b["example_index"] for b in first])
  assert sorted(indices.tolist()) == list(range(96))
  assert [len(b["example_index"]) for b in first] == [10] * 9 + [6]
  # Each batch is padded to its own longest sequence, and the bucketed batches pad less
  # than the unbucketed stream of the same epoch.
  def padded(batches):
    return sum(b["attention_mask"].size - b["attention_mask"].sum() for b in batches)
  plain = [{k: v.numpy() for k, v in b.items()}
           for b in pipeline.make_dataset(path, len(labels), 10, True, seed=5, epoch=0, aux=aux)]
  assert padded(first) < padded(plain)
  for b in first:
    assert b["attention_mask"].sum(1).max() == b["attention_mask"].shape[1]
  # Resuming at batch 4 gives exactly batches 4.. of the uninterrupted epoch, draws included.
  for got, want in zip(epoch(0, skip=4), first[4:]):
    for key in want:
      np.testing.assert_array_equal(got[key], want[key])
  assert not np.array_equal(np.concatenate([b["example_index"] for b in epoch(1)]), indices)
  # Prediction reads in length order; a multiple-of-8 padding rounds every batch up.
  ds = pipeline.make_dataset(path, len(labels), 32, False, bucketing=True, pad_to_multiple=8)
  lengths = [b["attention_mask"].numpy().sum(1) for b in ds]
  flat = np.concatenate(lengths)
  assert flat.tolist() == sorted(flat.tolist())
  assert all(b["input_ids"].shape[1] % 8 == 0 for b in ds)


def test_bucketed_training_rounds_lengths_up_to_multiples_of_16(tmp_path, tiny_bert,
                                                               tiny_corpus):
  # Bucketed batches bring a new length almost every step, and oneDNN keeps kernels for
  # each shape it ran (memory grows), so bucketed training pads to a multiple of 16, never
  # past --max_seq_length (48 here).
  out = tmp_path / "bucketed"
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, out, task="clcp", max_steps=12,
                                    eval_every_steps=12, do_predict=False,
                                    length_bucketing=True))
  assert set(summary["train"]["batch_lengths"]) <= {16, 32, 48}
  # Unpadded, the same epoch's bucketed batches have lengths that are not multiples of 16.
  raw = pipeline.make_dataset(str(out / "tfrecords" / "train.tfrecord"), 4, 16, True, seed=3,
                              aux=pipeline.AuxSampling(clcp=True), bucketing=True)
  raw_lengths = {int(b["input_ids"].shape[1]) for b in raw}
  assert any(n % 16 for n in raw_lengths)
  assert len(summary["train"]["batch_lengths"]) < len(raw_lengths)


@pytest.mark.parametrize("low", ["bf16", pytest.param("fp16", marks=pytest.mark.slow)])
def test_low_precision_trains_with_finite_losses_close_to_float32(low, tmp_path, tiny_bert,
                                                                  tiny_corpus):
  common = dict(task="both", max_steps=4, eval_every_steps=1, do_predict=False,
                learning_rate=1e-4, head_learning_rate=1e-3)
  exact = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "fp32",
                                  precision="fp32", **common))
  mixed = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / low, precision=low,
                                  do_export=True, **common))
  a, b = _history(tmp_path / "fp32"), _history(tmp_path / low)
  assert [r["step"] for r in b] == [1, 2, 3, 4]
  for term in ("mlc", "plcp", "clcp", "total"):
    # Step 1 runs the same weights on the same batch: only the arithmetic differs.
    assert b[0]["train_loss"][term] == pytest.approx(a[0]["train_loss"][term], rel=0.02)
    # Later steps stay finite; fp16 may skip an update while its loss scale settles.
    assert all(np.isfinite(r["train_loss"][term]) for r in b)
  probs = _dev_probabilities(tmp_path / low)
  assert np.isfinite(probs).all()
  np.testing.assert_allclose(probs, _dev_probabilities(tmp_path / "fp32"),
                             atol=0.05 if low == "bf16" else 0.2)
  # The SavedModel computes in the low type too, and still returns float32 probabilities.
  served = tf.saved_model.load(mixed["export_dir"]).signatures["serving_default"](
      text=tf.constant(["markets rallied as rates fell"]))["scores"]
  assert served.dtype == tf.float32 and np.isfinite(served.numpy()).all()
  assert mixed["eval_dev"]["micro_f1"] == pytest.approx(exact["eval_dev"]["micro_f1"], abs=0.1)
  with open(tmp_path / low / "run_config.json") as f:
    assert json.load(f)["precision"] == low


def test_a_resume_may_change_precision_and_the_config_records_the_new_one(tmp_path, tiny_bert,
                                                                         tiny_corpus):
  common = dict(task="clcp", eval_every_steps=2, do_predict=False)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, precision="fp32", max_steps=2,
                          **common))
  resumed = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, precision="bf16",
                                    max_steps=4, **common))
  assert resumed["train"]["trained_steps"] == 2
  with open(tmp_path / "run_config.json") as f:
    assert json.load(f)["precision"] == "bf16"
  # A setting that defines the model is still guarded.
  with pytest.raises(InputError, match="window_size"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, window_size=5, max_steps=4,
                            **common))


def test_xla_compiled_steps_and_predictions_match_the_plain_ones(tmp_path, tiny_bert,
                                                                 tiny_corpus, capsys):
  common = dict(task="clcp", max_steps=3, eval_every_steps=3, do_predict=False,
                precision="fp32", learning_rate=1e-4, head_learning_rate=1e-3)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "plain", **common))
  capsys.readouterr()
  xla = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "xla", jit_compile=True,
                                **common))
  assert "XLA: the training step compiled for" in capsys.readouterr().out
  # Lengths padded to multiples of 32 (at most 48 positions here): at most 2 shapes per
  # batch size, and the last batch of an epoch may add its own.
  assert 1 <= xla["train"]["xla_batch_shapes"] <= 4
  a, b = _history(tmp_path / "plain"), _history(tmp_path / "xla")
  for term in ("mlc", "clcp", "total"):
    assert b[0]["train_loss"][term] == pytest.approx(a[0]["train_loss"][term], rel=1e-4)
  np.testing.assert_allclose(_dev_probabilities(tmp_path / "xla"),
                             _dev_probabilities(tmp_path / "plain"), atol=1e-4)


def test_steps_per_loop_trains_exactly_as_one_step_per_call(tmp_path, tiny_bert, tiny_corpus):
  # 10 steps, evaluations every 4 and epochs of 6 steps: loops must stop at both.
  common = dict(task="both", max_steps=10, eval_every_steps=4, do_predict=False,
                precision="fp32")
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "one", **common))
  looped = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "five",
                                   steps_per_loop=5, **common))
  assert looped["train"]["steps"] == 10
  a, b = _history(tmp_path / "one"), _history(tmp_path / "five")
  assert [r["step"] for r in b] == [r["step"] for r in a] == [4, 8, 10]
  for ra, rb in zip(a, b):
    for term, value in ra["train_loss"].items():
      assert rb["train_loss"][term] == pytest.approx(value, rel=1e-6)
  np.testing.assert_allclose(_dev_probabilities(tmp_path / "five"),
                             _dev_probabilities(tmp_path / "one"), atol=1e-6)


def test_auto_precision_follows_the_cpu_flags(tmp_path, monkeypatch):
  with_bf16 = tmp_path / "bf16"
  with_bf16.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
  without = tmp_path / "plain"
  without.write_text("processor : 0\nflags : fpu sse avx2\n")
  assert precision._cpu_has_bf16(str(with_bf16))
  assert not precision._cpu_has_bf16(str(without))
  assert not precision._cpu_has_bf16(str(tmp_path / "missing"))
  monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
  monkeypatch.setattr(precision, "_cpu_has_bf16", lambda: True)
  assert precision.resolve("auto") == "bf16"
  monkeypatch.setattr(precision, "_cpu_has_bf16", lambda: False)
  assert precision.resolve("auto") == "fp32"
  assert precision.resolve("fp16") == "fp16"
  with pytest.raises(ValueError, match="precision"):
    precision.resolve("fp8")


@pytest.mark.parametrize("strategy", [pytest.param("one_device", marks=pytest.mark.slow),
                                      "mirrored"])
def test_microbatches_train_exactly_as_whole_batches(strategy, tmp_path, tiny_bert,
                                                     tiny_corpus):
  # No dropout here, so micro-batches of 3 (the last one shorter) must give the batch's
  # losses and updates: each term's sums are divided by the whole global batch's counts.
  common = dict(task="both", max_steps=6, eval_every_steps=3, do_predict=False,
                precision="fp32", distribution_strategy=strategy)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "whole", microbatch_size=0,
                          **common))
  parts = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "parts",
                                  microbatch_size=3, **common))
  assert parts["train"]["steps"] == 6
  a, b = _history(tmp_path / "whole"), _history(tmp_path / "parts")
  assert [r["step"] for r in b] == [r["step"] for r in a] == [3, 6]
  for ra, rb in zip(a, b):
    for term, value in ra["train_loss"].items():
      assert rb["train_loss"][term] == pytest.approx(value, rel=1e-5)
  np.testing.assert_allclose(_dev_probabilities(tmp_path / "parts"),
                             _dev_probabilities(tmp_path / "whole"), atol=1e-5)
  with open(tmp_path / "parts" / "run_config.json") as f:
    assert json.load(f)["microbatch_size"] == 3


def test_microbatches_are_refused_with_xla(tmp_path, tiny_bert, tiny_corpus):
  with pytest.raises(InputError, match=r"^--microbatch_size=4: not with --jit_compile"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, microbatch_size=4,
                            jit_compile=True))


def test_microbatches_sort_by_length_trim_each_to_its_longest_and_sum_to_the_batch():
  lengths = [5, 2, 9, 3, 3, 8, 1]
  mask = tf.sequence_mask(lengths, 9, dtype=tf.int32)
  ids = tf.reshape(tf.range(63) % 10, [7, 9]) * mask
  batch = {"input_ids": ids, "token_type_ids": tf.zeros_like(ids), "attention_mask": mask,
           "doc_length": tf.constant(lengths), "labels": tf.ones([7, 1])}
  table = tf.Variable(tf.random.stateless_normal([10, 2], [0, 1]))   # sparse gradients
  scale = tf.Variable([1.5, -0.5])
  unused = tf.Variable(1.0)
  variables = [table, scale, unused]

  def loss_and_gradients(part):
    with tf.GradientTape() as tape:
      states = tf.gather(table, part["input_ids"]) * scale
      weights = tf.cast(part["attention_mask"], tf.float32)[..., None]
      loss = tf.reduce_sum(tf.square(states) * weights) / 7.0
    seen.append((int(part["input_ids"].shape[1]), sorted(part["doc_length"].numpy())))
    return {"total": loss}, tape.gradient(loss, variables)

  seen, indices = [], []
  terms, grads = microbatches.run_in_microbatches(loss_and_gradients, batch, 3, variables,
                                                  indices.append)
  # Sorted by length, cut into 3s, each as wide as its own longest document.
  assert seen == [(3, [1, 2, 3]), (8, [3, 5, 8]), (9, [9])]
  assert [None if i is None else int(i) for i in indices] == [0, 1, 2, None]
  seen = []
  whole_terms, whole_grads = loss_and_gradients(batch)
  assert float(terms["total"]) == pytest.approx(float(whole_terms["total"]), rel=1e-6)
  # Lengths rounded up to a multiple (fewer kernel shapes), never past the batch's 9.
  seen = []
  rounded, _ = microbatches.run_in_microbatches(loss_and_gradients, batch, 3, variables,
                                                indices.append, pad_to_multiple=4)
  assert [width for width, _ in seen] == [4, 8, 9]
  assert float(rounded["total"]) == pytest.approx(float(whole_terms["total"]), rel=1e-6)
  np.testing.assert_allclose(grads[0].numpy(), tf.convert_to_tensor(whole_grads[0]).numpy(),
                             rtol=1e-5)
  np.testing.assert_allclose(grads[1].numpy(), whole_grads[1].numpy(), rtol=1e-5)
  assert grads[2] is None and whole_grads[2] is None


@pytest.mark.slow
def test_xla_with_two_replicas_trains_as_one_replica(tmp_path, tiny_bert, tiny_corpus):
  # The loss terms' global counts are all-reduced outside the compiled function: inside it,
  # XLA on one replica's device cannot reach the other replica's collective resources.
  strategy = distribution.mirrored_strategy(["/cpu:0", "/cpu:1"])
  common = dict(task="both", max_steps=1, eval_every_steps=1, do_eval=False,
                do_predict=False, learning_rate=1e-4, head_learning_rate=1e-3)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "two", jit_compile=True,
                          **common), strategy=strategy)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "one", **common))
  two, one = _history(tmp_path / "two"), _history(tmp_path / "one")
  assert [r["step"] for r in two] == [r["step"] for r in one] == [1]
  assert set(two[0]["train_loss"]) == {"mlc", "plcp", "clcp", "total"}
  for term, value in one[0]["train_loss"].items():
    assert two[0]["train_loss"][term] == pytest.approx(value, rel=1e-5)
