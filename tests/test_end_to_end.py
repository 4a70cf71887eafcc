"""Whole runs on a tiny random BERT: each task learns, resume, MirroredStrategy, outputs."""

import glob
import json
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from laco_tf import runner
from laco_tf.errors import InputError
from laco_tf.run_settings import RunOptions
from laco_tf.training import distribution, metrics


def tiny_options(corpus, bert, output_dir, **overrides):
  base = dict(data_dir=corpus, output_dir=str(output_dir), bert_model=bert, max_seq_length=48,
              train_batch_size=16, eval_batch_size=32, learning_rate=1e-3,
              head_learning_rate=1e-2, num_train_epochs=12, window_size=3, dropout_rate=0.0,
              seed=3, do_train=True, do_eval=True, do_predict=True, precision="fp32")
  base.update(overrides)
  return RunOptions(**base)


def _tags(log_dir, subdirs=True):
  tags = set()
  for path in glob.glob(os.path.join(log_dir, *(["*"] if subdirs else []),
                                     "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      tags |= {v.tag for v in event.summary.value}
  return tags


@pytest.mark.parametrize("task", [pytest.param("mltc", marks=pytest.mark.slow),
                                  pytest.param("plcp", marks=pytest.mark.slow), "clcp", "both"])
def test_each_task_fits_a_tiny_dataset_and_writes_its_outputs(task, tmp_path, tiny_bert,
                                                              tiny_corpus, capsys):
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task=task))
  captured = capsys.readouterr()
  # Progress (training steps, dev evaluations during training) on stderr, results on stdout.
  assert "steps (100%)" in captured.err and "dev: " in captured.err
  assert "steps (" not in captured.out and "dev micro-F1" in captured.out
  assert summary["eval_dev"]["micro_f1"] >= 0.9, summary["eval_dev"]
  assert summary["eval_test"]["micro_f1"] >= 0.85, summary["eval_test"]
  terms = {"mltc": ["mlc"], "plcp": ["mlc", "plcp"], "clcp": ["mlc", "clcp"],
           "both": ["mlc", "plcp", "clcp"]}[task]
  tags = _tags(str(tmp_path / "logs"))
  assert {f"loss/{t}" for t in terms + ["total"]} <= tags
  assert {"learning_rate/encoder", "learning_rate/heads", "gradient_norm", "metrics/micro_f1",
          "metrics/macro_f1", "metrics/micro_precision", "metrics/macro_recall",
          "metrics/hamming_loss", "metrics/subset_accuracy", "metrics/precision_at_1",
          "metrics/recall_at_3", "metrics/ndcg_at_5"} <= tags
  # Dev's eq.-4 loss shares the training tag (TensorBoard overlays them); one PR curve per
  # label; the settings for the HParams dashboard.
  assert "loss/mlc" in _tags(str(tmp_path / "logs" / "dev"), subdirs=False)
  labels = (tmp_path / "labels.txt").read_text().split()
  assert {f"pr_curve/{l}/pr_curves" for l in labels} <= tags
  assert "_hparams_/session_start_info" in _tags(str(tmp_path / "logs"), subdirs=False)
  assert not {f"loss/{t}" for t in {"plcp", "clcp"} - set(terms)} & tags
  with open(tmp_path / "eval_results_test.json") as f:
    assert json.load(f)["micro_f1"] == summary["eval_test"]["micro_f1"]
  with open(os.path.join(tiny_corpus, "test.jsonl")) as f:
    gold = [json.loads(l) for l in f]
  with open(tmp_path / "predictions_test.jsonl") as f:
    predictions = [json.loads(l) for l in f]
  assert [p["id"] for p in predictions] == [g["id"] for g in gold]
  assert [sorted(p["labels"]) for p in predictions] == [sorted(g["labels"]) for g in gold]
  labels = (tmp_path / "labels.txt").read_text().split()
  for p in predictions:
    assert list(p["probabilities"]) == labels
    assert sorted(p["predicted"]) == sorted(l for l, x in p["probabilities"].items() if x > 0.5)
  assert (tmp_path / "training_curves.png").stat().st_size > 1000
  # Ranking metrics of the result file are those of the saved probabilities.
  gold = np.array([[l in p["labels"] for l in labels] for p in predictions])
  scores = np.array([[p["probabilities"][l] for l in labels] for p in predictions])
  with open(tmp_path / "eval_results_test.json") as f:
    written = json.load(f)
  for key, value in metrics.ranking_metrics(gold, scores).items():
    assert written[key] == pytest.approx(value, abs=1e-6), key
  _check_dev_loss_and_best_scores(tmp_path, summary, labels)


def _check_dev_loss_and_best_scores(output_dir, summary, labels):
  """history.jsonl's dev loss is eq. 4 of the best checkpoint's dev probabilities; the
  best/ tags and the HParams dashboard report the best checkpoint, its settings typed."""
  with open(output_dir / "history.jsonl") as f:
    history = [json.loads(l) for l in f]
  best = [r for r in history if r["step"] == summary["train"]["best_step"]][-1]
  with open(output_dir / "predictions_dev.jsonl") as f:
    predictions = [json.loads(l) for l in f]
  gold = np.array([[l in p["labels"] for l in labels] for p in predictions], float)
  probs = np.clip([[p["probabilities"][l] for l in labels] for p in predictions], 1e-7, 1 - 1e-7)
  bce = -np.mean(np.sum(gold * np.log(probs) + (1 - gold) * np.log(1 - probs), axis=1))
  assert best["dev_loss"]["mlc"] == pytest.approx(bce, rel=1e-3)
  assert all(set(r["dev_loss"]) == {"mlc"} for r in history)
  last = {}
  for path in glob.glob(str(output_dir / "logs" / "dev" / "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag.startswith("best/"):
          last[v.tag] = (event.step, float(tf.make_ndarray(v.tensor)))
  final = max(step for step, _ in last.values())
  assert last["best/step"] == (final, summary["train"]["best_step"])
  assert last["best/micro_f1"] == (final, pytest.approx(best["dev"]["micro_f1"], abs=1e-6))
  from tensorboard.plugins.hparams import api_pb2, metadata  # pylint: disable=import-outside-toplevel
  experiment = None
  for path in glob.glob(str(output_dir / "logs" / "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == metadata.EXPERIMENT_TAG:
          experiment = metadata.parse_experiment_plugin_data(v.metadata.plugin_data.content)
  types = {h.name: h.type for h in experiment.hparam_infos}
  assert (types["learning_rate"], types["seed"], types["task"], types["length_bucketing"],
          types["label_slots"]) == (api_pb2.DATA_TYPE_FLOAT64, api_pb2.DATA_TYPE_FLOAT64,
                                    api_pb2.DATA_TYPE_STRING, api_pb2.DATA_TYPE_BOOL,
                                    api_pb2.DATA_TYPE_FLOAT64)
  assert [m.name.tag for m in experiment.metric_infos] == [
      "best/micro_f1", "best/macro_f1", "best/step"]


@pytest.mark.parametrize("bucketing", [pytest.param(False, marks=pytest.mark.slow), True])
def test_resuming_after_a_stop_continues_where_it_left_off(bucketing, tmp_path, tiny_bert,
                                                           tiny_corpus):
  full = tmp_path / "full"
  runner.run(tiny_options(tiny_corpus, tiny_bert, full, task="both", max_steps=10,
                          eval_every_steps=4, do_predict=False,
                          length_bucketing=bucketing))
  parted = tmp_path / "parted"
  first = runner.run(tiny_options(tiny_corpus, tiny_bert, parted, task="both", max_steps=8,
                                  eval_every_steps=4, do_predict=False,
                                  length_bucketing=bucketing))
  assert first["train"]["steps"] == 8
  second = runner.run(tiny_options(tiny_corpus, tiny_bert, parted, task="both", max_steps=10,
                                   eval_every_steps=4, do_predict=False,
                                   length_bucketing=bucketing))
  assert second["train"]["trained_steps"] == 2 and second["train"]["steps"] == 10
  # Same data order, same draws, same weights: the split run equals the straight one.
  for name in ("eval_results_dev.json",):
    with open(full / name) as a, open(parted / name) as b:
      assert json.load(a)["micro_f1"] == pytest.approx(json.load(b)["micro_f1"], abs=1e-9)
  with open(full / "predictions_dev.jsonl") as a, open(parted / "predictions_dev.jsonl") as b:
    for la, lb in zip(a, b):
      pa, pb = json.loads(la)["probabilities"], json.loads(lb)["probabilities"]
      np.testing.assert_allclose(list(pa.values()), list(pb.values()), atol=1e-5)
  with open(parted / "history.jsonl") as f:
    records = [json.loads(l) for l in f]
  assert [r["step"] for r in records] == [4, 8, 10]
  # Training time accumulates across the stop: the resumed run reports the total.
  seconds = [r["train_seconds"] for r in records]
  assert 0 < seconds[0] < seconds[1] < seconds[2] <= second["train"]["seconds"]
  assert first["train"]["seconds"] >= seconds[1]
  # A finished run resumes to nothing: no more steps, and its time is the recorded total.
  started = time.time()
  third = runner.run(tiny_options(tiny_corpus, tiny_bert, parted, task="both", max_steps=10,
                                  eval_every_steps=4, do_predict=False,
                                  length_bucketing=bucketing))
  assert third["train"]["trained_steps"] == 0
  assert seconds[2] <= third["train"]["seconds"] <= seconds[2] + (time.time() - started)


def test_save_checkpoints_steps_saves_the_latest_checkpoint_between_evaluations(
    tmp_path, tiny_bert, tiny_corpus, monkeypatch):
  saved = []
  original = tf.train.CheckpointManager.save

  def recording_save(manager, checkpoint_number=None, *args, **kwargs):
    saved.append((os.path.basename(manager.directory), checkpoint_number))
    return original(manager, checkpoint_number, *args, **kwargs)
  monkeypatch.setattr(tf.train.CheckpointManager, "save", recording_save)
  # steps_per_loop=3 still stops at each checkpoint step.
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_steps=5,
                          eval_every_steps=100, save_checkpoints_steps=2, steps_per_loop=3,
                          do_predict=False))
  # (best/ is saved too when step 5's dev score improves; a 5-step model may score 0.)
  assert [n for d, n in saved if d == "checkpoints"] == [2, 4, 5]


def _scalars(log_dir, tag):
  values = {}
  for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*")):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        if v.tag == tag:
          values[event.step] = float(tf.make_ndarray(v.tensor))
  return values


def test_mirrored_strategy_over_two_cpus_matches_a_single_device(tmp_path, tiny_bert,
                                                                 tiny_corpus):
  strategy = distribution.mirrored_strategy(["/cpu:0", "/cpu:1"])
  assert strategy.num_replicas_in_sync == 2
  # Small rates: Adam turns float-summation noise into visible drift at high rates.
  common = dict(task="both", max_steps=3, eval_every_steps=3, do_predict=False,
                learning_rate=1e-4, head_learning_rate=1e-3)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "m", **common),
             strategy=strategy)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "s", **common))
  # Each replica's loss is scaled by the global batch: the summed losses equal the
  # single-device losses of the same global batch, term by term.
  for tag in ("loss/total", "loss/mlc", "loss/plcp", "loss/clcp"):
    m = _scalars(str(tmp_path / "m" / "logs" / "train"), tag)
    s = _scalars(str(tmp_path / "s" / "logs" / "train"), tag)
    assert sorted(m) == sorted(s) == [1, 2, 3]
    assert m[1] == pytest.approx(s[1], rel=1e-6)
    # Later steps differ only by float summation order, which Adam amplifies slightly.
    np.testing.assert_allclose([m[2], m[3]], [s[2], s[3]], rtol=1e-3)
  with open(tmp_path / "m" / "predictions_dev.jsonl") as a, \
       open(tmp_path / "s" / "predictions_dev.jsonl") as b:
    for la, lb in zip(a, b):
      pa, pb = json.loads(la)["probabilities"], json.loads(lb)["probabilities"]
      np.testing.assert_allclose(list(pa.values()), list(pb.values()), atol=1e-3)


def test_early_stopping_stops_after_patience_steps_without_gain(tmp_path, tiny_bert,
                                                                 tiny_corpus):
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc",
                                    learning_rate=1e-9, head_learning_rate=1e-9,
                                    max_steps=100, eval_every_steps=2,
                                    early_stopping_patience=4, do_predict=False))
  best = summary["train"]["best_step"]
  assert summary["train"]["steps"] == best + 4 < 100


def test_output_dir_of_another_run_is_refused_unless_overwritten(tmp_path, tiny_bert,
                                                                  tiny_corpus):
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_steps=1,
                          do_predict=False))
  with pytest.raises(InputError, match=r"holds a run with different settings \(task: "
                     r"'mltc' -> 'clcp'\).*--overwrite_output_dir"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="clcp", max_steps=1))
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="clcp",
                                    max_steps=1, overwrite_output_dir=True, do_predict=False))
  assert summary["train"]["trained_steps"] == 1


def test_an_invocation_that_does_not_train_keeps_the_recorded_training(tmp_path, tiny_bert,
                                                                       tiny_corpus, capsys):
  trained = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_steps=2,
                                    do_predict=False))
  capsys.readouterr()
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_steps=2,
                          do_train=False, do_eval=False, do_predict=True))
  captured = capsys.readouterr()
  # Progress goes to stderr, results to stdout.
  assert "Predicting test" in captured.out and "documents (" not in captured.out
  assert "32/32 documents (100%)" in captured.err
  with open(tmp_path / "run_summary.json", encoding="utf-8") as f:
    saved = json.load(f)
  assert saved["train"] == trained["train"]
  assert saved["eval_dev"] == json.loads(json.dumps(trained["eval_dev"], default=float))
  assert saved["eval_test"]["num_documents"] == 32


def test_evaluating_without_a_trained_model_is_a_clear_error(tmp_path, tiny_bert, tiny_corpus):
  with pytest.raises(InputError, match=r"holds no trained model \(run with --do_train first\)"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, do_train=False, do_eval=True,
                            do_predict=False))


@pytest.mark.parametrize("setting", [
    dict(joint_embedding=False, task="both"),                  # w/o JE
    pytest.param(dict(cross_attention=False, task="clcp"),    # w/o CA, [CLS]
                 marks=pytest.mark.slow),
    pytest.param(dict(joint_embedding=False, cross_attention=False, task="mltc",
                      pooling="mean"), marks=pytest.mark.slow),
    dict(joint_embedding=False, cross_attention=False, task="mltc"),  # BERT baseline
])
def test_ablations_of_paper_table_4_train_and_fit(setting, tmp_path, tiny_bert, tiny_corpus):
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, do_predict=False,
                                    num_train_epochs=30, **setting))
  assert summary["eval_dev"]["micro_f1"] >= 0.85, summary["eval_dev"]
  with open(tmp_path / "tfrecords" / "metadata.json") as f:
    ids = json.load(f)["label_token_ids"]
  assert ids == ([] if not setting.get("joint_embedding", True) else [1, 2, 3, 4])


@pytest.mark.parametrize("setting,message", [
    (dict(joint_embedding=False, cross_attention=False, task="clcp"),
     r"--task=clcp: the BERT baseline .* has no label states for PLCP/CLCP; use --task=mltc"),
    (dict(pooling="mean"), r"--pooling=mean: only used with --nocross_attention"),
    (dict(joint_embedding=False, label_init="name"), r"--label_init=name: there are no label"),
    (dict(label_descriptions="d.tsv"), r"--label_descriptions=d.tsv: only read with"),
])
def test_combinations_that_make_no_sense_are_refused(setting, message, tmp_path, tiny_bert,
                                                     tiny_corpus):
  with pytest.raises(InputError, match=message):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, **setting))


def test_max_seq_length_beyond_the_encoder_positions_is_refused(tmp_path, tiny_bert,
                                                               tiny_corpus):
  with pytest.raises(InputError, match=r"--max_seq_length=200: the encoder has only 128 "
                     r"positions"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, max_seq_length=200))


def test_without_joint_embedding_the_length_limit_ignores_labels(tmp_path, tiny_bert,
                                                                 tiny_corpus):
  # [CLS] + 8 words + [SEP] fits 10 positions; with the 4 label tokens it would not.
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc",
                                    joint_embedding=False, max_seq_length=10, max_steps=1,
                                    do_predict=False))
  assert summary["train"]["steps"] == 1


def test_max_doc_tokens_sets_the_text_budget_beside_the_label_tokens(tmp_path, tiny_bert,
                                                                    tiny_corpus):
  # 4 labels: 20 text wordpieces + 4 label tokens + 3 specials = 27 positions.
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_doc_tokens=20,
                          max_seq_length=None, max_steps=1, do_predict=False))
  with open(tmp_path / "tfrecords" / "metadata.json") as f:
    assert json.load(f)["max_seq_length"] == 27
  with open(tmp_path / "predictions_dev.jsonl") as f:
    assert len(f.readlines()) == 32
  from laco_tf.data import pipeline  # pylint: disable=import-outside-toplevel
  lengths = np.concatenate([b["doc_length"].numpy() for b in pipeline.make_dataset(
      str(tmp_path / "tfrecords" / "train.tfrecord"), 4, 32, False)])
  assert lengths.max() == 20
  with pytest.raises(InputError, match=r"--max_doc_tokens=125: .* needs 132 positions, the "
                     r"encoder has 128 .* lower it to at most 121"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "long", max_doc_tokens=125,
                            max_seq_length=None))
  with pytest.raises(InputError, match=r"--max_seq_length=48, --max_doc_tokens=20: expected "
                     "one of the two"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path / "both", max_doc_tokens=20))


def test_without_either_length_the_text_budget_is_256_or_what_the_positions_leave(tmp_path):
  from laco_tf.run_settings import RunOptions, resolve_lengths  # pylint: disable=import-outside-toplevel
  opts = RunOptions(data_dir="d", output_dir="o")
  assert (opts.max_seq_length, opts.max_doc_tokens) == (None, None)
  # 90 labels beside 256 text wordpieces: 349 of BERT's 512 positions.
  resolved = resolve_lengths(opts, 90, 512)
  assert (resolved.max_doc_tokens, resolved.max_seq_length) == (256, 349)
  # 300 labels leave 512 - 303 = 209 positions for text.
  resolved = resolve_lengths(opts, 300, 512)
  assert (resolved.max_doc_tokens, resolved.max_seq_length) == (209, 512)
  # Without joint embedding only [CLS] and [SEP] sit beside the text.
  resolved = resolve_lengths(RunOptions(joint_embedding=False), 300, 512)
  assert (resolved.max_doc_tokens, resolved.max_seq_length) == (256, 258)
  assert resolve_lengths(RunOptions(max_seq_length=100), 90, 512).max_seq_length == 100
  assert resolve_lengths(RunOptions(max_seq_length=100), 90, 512).max_doc_tokens is None
  with pytest.raises(InputError, match="505 label tokens leave 4 of the encoder's 512 "
                     "positions for text; at least 8 are needed"):
    resolve_lengths(opts, 505, 512)


def test_gradient_rows_repeated_by_gathers_are_merged_before_clipping():
  from laco_tf.training.train_step import _merge_rows  # pylint: disable=import-outside-toplevel
  grad = tf.IndexedSlices(tf.constant([[1.0, 2.0], [3.0, 4.0], [1.0, 0.0]]),
                          tf.constant([5, 2, 5]), tf.constant([8, 2]))
  merged = _merge_rows(grad)
  dense = tf.convert_to_tensor(grad)
  np.testing.assert_allclose(tf.convert_to_tensor(merged).numpy(), dense.numpy())
  assert float(tf.linalg.global_norm([merged])) == pytest.approx(float(tf.norm(dense)))


def test_the_early_stopping_metric_chooses_the_best_checkpoint(tmp_path, tiny_bert, tiny_corpus):
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc",
                                    max_steps=12, eval_every_steps=2, do_predict=False,
                                    early_stopping_metric="ndcg_at_1"))
  with open(tmp_path / "history.jsonl") as f:
    history = [json.loads(l) for l in f]
  scores = [r["dev"]["ndcg_at_1"] for r in history]
  best = history[scores.index(max(scores))]  # the first of equal scores: only a gain counts
  assert summary["train"]["best_step"] == best["step"]
  assert summary["train"]["best_dev_ndcg_at_1"] == pytest.approx(best["dev"]["ndcg_at_1"])
  assert [r["step"] for r in history if r["best"]][-1] == best["step"]
  # --do_eval scores the chosen checkpoint.
  assert summary["eval_dev"]["micro_f1"] == pytest.approx(best["dev"]["micro_f1"], abs=1e-6)
  with pytest.raises(InputError, match=r"early_stopping_metric: 'ndcg_at_1' -> 'micro_f1'"):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_steps=12,
                            eval_every_steps=2, do_train=False, do_predict=False))
