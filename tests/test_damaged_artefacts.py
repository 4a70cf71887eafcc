"""Damaged or missing artefacts and a full disk: one line naming the file and what to do,
caches rebuilt, nothing half-written left behind."""

import builtins
import dataclasses
import errno
import glob
import os
import re
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf

from laco_tf import results, run_dir, run_settings, runner
from laco_tf.data import tfrecords
from laco_tf.errors import DiskFullError, InputError
from laco_tf.training import checkpoint_files, history
from tests.test_end_to_end import tiny_options
from tests.test_tfrecords import _setup


def _options(corpus, bert, out):
  # threshold 0.05: every label predicted, so dev micro-F1 > 0 and best/ is saved. A rerun
  # of these options trains nothing: it restores checkpoints/ and best/ only.
  return tiny_options(corpus, bert, out, max_steps=2, do_eval=False, do_predict=False,
                      threshold=0.05)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_bert, tiny_corpus):
  """A run trained to step 2 (checkpoints/ckpt-2 and best/ckpt-2), copied per test."""
  out = tmp_path_factory.mktemp("trained") / "run"
  runner.run(_options(tiny_corpus, tiny_bert, out))
  assert os.path.isfile(out / "best" / "ckpt-2.index")
  return out


def _flip_byte(path):
  data = bytearray(open(path, "rb").read())
  data[len(data) // 2] ^= 0xFF
  open(path, "wb").write(bytes(data))


def _remove_data(out):
  for path in glob.glob(str(out / "checkpoints" / "ckpt-2.*")):
    os.remove(path)


def _truncate_data(out):
  path, = glob.glob(str(out / "checkpoints" / "ckpt-2.data-*"))
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 3)


@pytest.mark.parametrize("damage,message", [
    (_remove_data, "checkpoints: its index names ckpt-2, whose files are gone; restore it "
                   "from a copy, or delete {out}/checkpoints to train again from step 0"),
    (_truncate_data, "checkpoints/ckpt-2 is unreadable (truncated or corrupt: "),
    (lambda out: _flip_byte(glob.glob(str(out / "best" / "ckpt-2.data-*"))[0]),
     "best/ckpt-2 is unreadable (truncated or corrupt: "),
    (lambda out: (out / "checkpoints" / "checkpoint").write_text("garbage {"),
     "checkpoints/checkpoint is unreadable ("),
])
def test_a_missing_or_corrupt_checkpoint_is_refused_in_one_line_not_retrained(
    damage, message, trained, tmp_path, tiny_bert, tiny_corpus):
  out = tmp_path / "run"
  shutil.copytree(trained, out)
  damage(out)
  before = (out / "history.jsonl").read_text()
  with pytest.raises(InputError) as caught:
    runner.run(_options(tiny_corpus, tiny_bert, out))
  assert message.format(out=out) in str(caught.value) and "\n" not in str(caught.value)
  assert (out / "history.jsonl").read_text() == before  # nothing retrained from step 0


def _write_transformers_layout(prefix):
  """A checkpoint as LACO-TF saved it when its encoder was transformers' TF BERT model, whose
  weights sat under a main layer of their own: ``model/bert/bert/embeddings/...``."""
  for path in glob.glob(prefix + ".*"):
    os.remove(path)
  embeddings = tf.Module()
  embeddings.weight = tf.Variable(tf.zeros([4, 2]))
  main_layer = tf.Module()
  main_layer.embeddings = embeddings
  encoder = tf.Module()
  encoder.bert = main_layer
  model = tf.Module()
  model.bert = encoder
  tf.train.Checkpoint(model=model).write(prefix)
  assert any(name.startswith("model/bert/bert/embeddings/")
             for name, _ in tf.train.list_variables(prefix))


@pytest.mark.parametrize("folder,overrides", [
    ("checkpoints", {}),  # a rerun resumes from checkpoints/
    ("best", {"do_train": False, "do_predict": True}),  # --do_predict scores best/
])
def test_a_checkpoint_of_the_transformers_encoder_is_refused_in_one_line(
    folder, overrides, trained, tmp_path, tiny_bert, tiny_corpus):
  out = tmp_path / "run"
  shutil.copytree(trained, out)
  prefix = str(out / folder / "ckpt-2")
  _write_transformers_layout(prefix)
  with pytest.raises(InputError) as caught:
    runner.run(dataclasses.replace(_options(tiny_corpus, tiny_bert, out), **overrides))
  assert str(caught.value) == (
      f"{prefix}: a checkpoint of transformers' TF BERT encoder, which this LACO-TF (with its "
      "own BERT encoder) does not read; resume or score it with laco-tf 0.1 (transformers "
      "4.54), or train it again in a new --output_dir")


def test_a_rerun_removes_what_interrupted_saves_left_and_only_that(trained, tmp_path,
                                                                   tiny_bert, tiny_corpus):
  out = tmp_path / "run"
  shutil.copytree(trained, out)
  os.makedirs(out / "best" / "ckpt-3_temp")
  (out / "checkpoints" / ("checkpoint.tmp" + "0f" * 16)).write_text("")
  (out / "best" / "notes_temp").write_text("mine")
  runner.run(_options(tiny_corpus, tiny_bert, out))
  assert sorted(os.listdir(out / "best")) == [
      "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index", "notes_temp"]
  assert sorted(os.listdir(out / "checkpoints")) == [
      "checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"]


def _steps(log_dir, tag):
  return sorted(e.step for path in glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
                for e in tf.compat.v1.train.summary_iterator(path)
                if any(v.tag == tag for v in e.summary.value))


def test_a_resume_drops_tensorboard_points_logged_after_its_checkpoint(trained, tmp_path,
                                                                       tiny_bert, tiny_corpus):
  out = tmp_path / "run"
  shutil.copytree(trained, out)
  # What a run stopped after step 2's checkpoint (a full disk, a kill) logged at step 3.
  writer = tf.summary.create_file_writer(str(out / "logs" / "dev"))
  with writer.as_default():
    tf.summary.scalar("metrics/micro_f1", 0.5, step=3)
  writer.close()
  assert _steps(str(out / "logs" / "dev"), "metrics/micro_f1") == [2, 3]
  runner.run(_options(tiny_corpus, tiny_bert, out))
  assert _steps(str(out / "logs" / "dev"), "metrics/micro_f1") == [2]
  assert _steps(str(out / "logs" / "train"), "loss/total") == [1, 2]


def test_a_full_disk_at_a_checkpoint_save_is_one_line_and_removes_what_it_wrote(
    monkeypatch, tmp_path):
  directory = tmp_path / "checkpoints"
  manager = checkpoint_files.CheckpointManager(
      tf.train.Checkpoint(v=tf.Variable(tf.zeros([1000]))), str(directory), max_to_keep=1)
  manager.save(checkpoint_number=1)

  def write(self, prefix, options=None):
    # TF's save on a full disk: a partial shard in "<prefix>_temp", then this error.
    os.makedirs(prefix + "_temp")
    part = prefix + "_temp/part-00000-of-00001.data-00000-of-00001.tempstate1"
    open(part, "wb").write(b"\0" * 1000)
    open(prefix + ".index", "wb").write(b"partial")
    raise tf.errors.ResourceExhaustedError(None, None, f"{part}; No space left on device "
                                           "[Op:SaveV2]")
  monkeypatch.setattr(tf.train.Checkpoint, "_write", write)
  with pytest.raises(DiskFullError, match=f"^{directory}: no space left on device writing "
                     r"ckpt-2 \(.* free, about 0.0 MB needed\); nothing half-written was kept"):
    manager.save(checkpoint_number=2)
  assert sorted(os.listdir(directory)) == [
      "checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index"]
  assert tf.train.latest_checkpoint(str(directory)).endswith("ckpt-1")


def _open_failing_on_tmp(monkeypatch):
  """open() and os.fdopen() whose files named *.tmp take half of the first write, then
  raise ENOSPC."""
  real_open = builtins.open

  class Full:
    def __init__(self, f):
      self.f = f

    def write(self, data):
      self.f.write(data[:len(data) // 2])
      self.f.flush()
      raise OSError(errno.ENOSPC, "No space left on device", self.f.name)

    def __getattr__(self, name):
      return getattr(self.f, name)

    def __enter__(self):
      return self

    def __exit__(self, *exc):
      self.f.close()

  def fake_open(file, mode="r", *args, **kwargs):
    f = real_open(file, mode, *args, **kwargs)
    return Full(f) if str(file).endswith(".tmp") and "w" in mode else f

  def fake_fdopen(fd, mode="r", *args, **kwargs):
    f = real_fdopen(fd, mode, *args, **kwargs)
    name = os.readlink(f"/proc/self/fd/{fd}")
    return Full(f) if name.endswith(".tmp") and mode[0] in "wa" else f
  real_fdopen = os.fdopen
  monkeypatch.setattr(builtins, "open", fake_open)
  monkeypatch.setattr(os, "fdopen", fake_fdopen)


def test_a_full_disk_in_an_atomic_write_keeps_the_old_file_and_no_temporary(monkeypatch,
                                                                            tmp_path):
  target = tmp_path / "eval_results_dev.json"
  target.write_text("old")
  _open_failing_on_tmp(monkeypatch)
  with pytest.raises(DiskFullError, match=f"^{tmp_path}: no space left on device writing "
                     r"eval_results_dev.json \(.* free, about 0.0 MB needed\); nothing "
                     "half-written was kept"):
    results.write_atomically(str(target), "new" * 10)
  assert os.listdir(tmp_path) == ["eval_results_dev.json"] and target.read_text() == "old"


def test_a_full_disk_writing_run_config_leaves_no_temporary(monkeypatch, tmp_path):
  opts = run_settings.RunOptions(data_dir="d", output_dir=str(tmp_path / "out"))
  _open_failing_on_tmp(monkeypatch)
  with pytest.raises(DiskFullError, match="no space left on device writing run_config.json"):
    run_dir.claim_output_dir(opts, {})
  assert os.listdir(tmp_path / "out") == []


def test_a_full_disk_writing_tfrecords_leaves_no_temporary(monkeypatch, tmp_path, tiny_bert,
                                                           tiny_corpus):
  spec, splits, labels, ids = _setup(tiny_bert, tiny_corpus)
  real = tf.io.TFRecordWriter

  class Full(real):
    def write(self, record):
      super().write(record)
      self.flush()
      raise tf.errors.ResourceExhaustedError(None, None, "x.tmp; No space left on device")
  monkeypatch.setattr(tf.io, "TFRecordWriter", Full)
  with pytest.raises(DiskFullError, match="no space left on device writing train.tfrecord"):
    tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 40)
  assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("damage,reason", [
    (lambda d: _flip_byte(os.path.join(d, "dev.tfrecord")),
     "dev.tfrecord does not match the checksum recorded in metadata.json (corrupt or changed)"),
    (lambda d: open(os.path.join(d, "metadata.json"), "w").write("{garbage"),
     "metadata.json is unreadable (Expecting property name"),
])
def test_a_corrupt_tfrecord_cache_is_rebuilt_with_one_line(damage, reason, tmp_path,
                                                           tiny_bert, tiny_corpus, capsys):
  spec, splits, labels, ids = _setup(tiny_bert, tiny_corpus)
  tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 40)
  good = (tmp_path / "dev.tfrecord").read_bytes()
  damage(str(tmp_path))
  capsys.readouterr()
  tfrecords.prepare_tfrecords(str(tmp_path), splits, labels, spec, ids, 40)
  assert f"Rebuilding TFRecords in {tmp_path}: {reason}" in capsys.readouterr().out
  assert (tmp_path / "dev.tfrecord").read_bytes() == good


def test_a_history_line_cut_short_is_dropped_with_a_message_others_are_refused(tmp_path,
                                                                             capsys):
  path = tmp_path / "history.jsonl"
  path.write_text('{"step": 2}\n{"step": 4}\n{"step": 6, "dev": {"mi')
  assert history.truncate_history(str(tmp_path), 6) == [{"step": 2}, {"step": 4}]
  assert f"{path}: dropped its last line, cut short" in capsys.readouterr().out
  assert path.read_text() == '{"step": 2}\n{"step": 4}\n'
  path.write_text('{"step": 2}\ngarbage\n{"step": 6}\n')
  with pytest.raises(InputError, match=f"^{path}:2: not a record of a dev evaluation"):
    history.read_history(str(tmp_path))


@pytest.mark.slow
def test_a_real_full_disk_is_one_line_from_the_command_and_its_rerun_finishes(
    tmp_path, tiny_bert, tiny_corpus):
  """A real tmpfs (needs root), filled to leave half a checkpoint's size free."""
  mount = tmp_path / "small"
  mount.mkdir()
  if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
                    capture_output=True).returncode != 0:
    pytest.skip("cannot mount a tmpfs here (needs root)")
  try:
    out = mount / "run"
    command = [sys.executable, os.path.join(os.path.dirname(__file__), "..",
                                            "run_classifier.py"),
               f"--data_dir={tiny_corpus}", f"--output_dir={out}", f"--bert_model={tiny_bert}",
               "--max_seq_length=48", "--do_train", "--precision=fp32", "--window_size=3",
               "--threshold=0.05"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(command + ["--max_steps=2"], check=True, capture_output=True, env=env)
    size = sum(os.path.getsize(p) for p in glob.glob(str(out / "checkpoints" / "ckpt-2.*")))
    free = shutil.disk_usage(mount).free
    with open(mount / "filler", "wb") as f:
      f.write(b"\0" * (free - size // 2))
    first = subprocess.run(command + ["--max_steps=4"], capture_output=True, text=True, env=env)
    # One line, after the progress lines (stderr) of the steps trained before it.
    lines = [l for l in first.stderr.splitlines() if l.strip()]
    assert first.returncode == 1 and all(
        re.match(r"(dev: )?\d+/\d+ \w+s \(\d+%\)", l) for l in lines[:-1]), first.stderr
    lines = lines[-1:]
    assert lines[0].startswith(f"run_classifier.py: error: {out}/") and (
        "no space left on device writing ckpt-4 (" in lines[0]), lines[0]
    assert not glob.glob(str(out / "**" / "*_temp"), recursive=True)
    assert not glob.glob(str(out / "**" / "*.tmp*"), recursive=True)
    os.remove(mount / "filler")
    second = subprocess.run(command + ["--max_steps=4"], capture_output=True, text=True,
                            env=env)
    assert second.returncode == 0, second.stderr
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("ckpt-4")
  finally:
    subprocess.run(["umount", str(mount)], check=False)
