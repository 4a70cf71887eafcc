"""SIGTERM to a real training process: checkpoint at the current step, exit 42, exact rerun."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from laco_tf import runner
from laco_tf.serving import export_versions
from laco_tf.errors import InputError, PreemptedError
from laco_tf.training import evaluation
from laco_tf.training.trainer import Trainer
from tests.test_end_to_end import tiny_options

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _command(corpus, bert, output_dir):
  return [sys.executable, os.path.join(ROOT, "run_classifier.py"), "--task=clcp",
          f"--data_dir={corpus}", f"--bert_model={bert}", f"--output_dir={output_dir}",
          "--max_seq_length=48", "--train_batch_size=8", "--learning_rate=1e-3",
          "--head_learning_rate=1e-2", "--window_size=3", "--dropout_rate=0.2", "--seed=3",
          "--precision=fp32", "--max_steps=240", "--eval_every_steps=40", "--do_train",
          "--do_eval"]


def _dev(output_dir):
  with open(os.path.join(output_dir, "eval_results_dev.json")) as f:
    scores = json.load(f)
  with open(os.path.join(output_dir, "predictions_dev.jsonl")) as f:
    probs = [list(json.loads(l)["probabilities"].values()) for l in f]
  return scores, np.array(probs)


@pytest.mark.slow
def test_sigterm_saves_the_current_step_exits_42_and_the_rerun_finishes_exactly(
    tmp_path, tiny_bert, tiny_corpus):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
  done = subprocess.run(_command(tiny_corpus, tiny_bert, full), capture_output=True,
                        text=True, env=env, cwd=ROOT)
  assert done.returncode == 0, done.stderr

  process = subprocess.Popen(_command(tiny_corpus, tiny_bert, cut), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
  deadline = time.time() + 300
  while not os.path.exists(os.path.join(cut, "history.jsonl")):  # the step-40 evaluation
    assert process.poll() is None and time.time() < deadline, "training never evaluated"
    time.sleep(0.05)
  process.send_signal(signal.SIGTERM)
  stderr = process.communicate(timeout=300)[1]
  assert process.returncode == PreemptedError.EXIT_CODE == 42, stderr
  line = [l for l in stderr.splitlines() if l.strip()][-1]
  assert line.startswith("run_classifier.py: preempted: step ")
  step = int(line.split("step ")[1].split(":")[0])
  assert 40 <= step < 240, line
  assert f"saving a checkpoint of step {step}" in line
  with open(os.path.join(cut, "checkpoints", "checkpoint")) as f:
    assert f'model_checkpoint_path: "ckpt-{step}"' in f.read()
  assert not os.path.exists(os.path.join(cut, "eval_results_dev.json"))

  rerun = subprocess.run(_command(tiny_corpus, tiny_bert, cut), capture_output=True, text=True,
                         env=env, cwd=ROOT)
  assert rerun.returncode == 0, rerun.stderr
  assert f"at step {step}" in rerun.stdout
  # Rerunning the finished run trains nothing and restores quietly (no warning per Adam slot).
  again = subprocess.run(_command(tiny_corpus, tiny_bert, cut), capture_output=True, text=True,
                         env=env, cwd=ROOT)
  assert again.returncode == 0, again.stderr
  assert "could not be found" not in again.stderr and "unrestored" not in again.stderr
  (full_scores, full_probs), (cut_scores, cut_probs) = _dev(full), _dev(cut)
  assert cut_scores["micro_f1"] == pytest.approx(full_scores["micro_f1"], abs=1e-12)
  np.testing.assert_allclose(cut_probs, full_probs, atol=1e-6)


class _Killed(BaseException):
  """Stands in for a kill: no handler of ours catches it."""


def _rising_scores(monkeypatch, score=None):
  """Makes every dev evaluation score 0.1 x its step (each one improves), or `score`."""
  real = Trainer.evaluate_dev

  def evaluate_dev(self):
    dev, probs = real(self)
    return {**dev, "micro_f1": 0.1 * int(self.step.numpy()) if score is None else score}, probs
  monkeypatch.setattr(Trainer, "evaluate_dev", evaluate_dev)


def _saved_step(directory):
  path = tf.train.latest_checkpoint(str(directory))
  return int(path.rsplit("-", 1)[1]) if path else None


def test_a_kill_between_the_checkpoint_and_best_saves_leaves_best_within_the_trajectory(
    tmp_path, tiny_bert, tiny_corpus, monkeypatch, capsys):
  common = dict(task="mltc", eval_every_steps=1, do_eval=False, do_predict=False)
  _rising_scores(monkeypatch)
  real_save, saved = tf.train.CheckpointManager.save, []

  def save(self, checkpoint_number=None, *args, **kwargs):
    if checkpoint_number == 2 and 2 in saved:  # the second save of step 2's evaluation
      raise _Killed
    saved.append(checkpoint_number)
    return real_save(self, checkpoint_number, *args, **kwargs)
  monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
  with pytest.raises(_Killed):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, max_steps=2, **common))
  monkeypatch.undo()
  capsys.readouterr()
  # The resume trains nothing more (--max_steps=1): what it uses is what the kill left.
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, max_steps=1, **common))
  out = capsys.readouterr().out
  assert _saved_step(tmp_path / "best") <= _saved_step(tmp_path / "checkpoints")
  assert summary["train"]["best_step"] == _saved_step(tmp_path / "best") == 2
  assert f"{tmp_path / 'best'} holds step 1, not step 2, which the resumed checkpoint" in out
  assert f"Using weights from {tmp_path / 'best' / 'ckpt-2'}" in out


def test_best_beyond_the_resumed_checkpoint_is_discarded_and_judged_afresh(
    tmp_path, tiny_bert, tiny_corpus, monkeypatch, capsys):
  common = dict(task="mltc", eval_every_steps=1, do_eval=False, do_predict=False)
  _rising_scores(monkeypatch)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, max_steps=2, **common))
  assert _saved_step(tmp_path / "best") == 2
  # best/ of step 2 with no checkpoint that far: what best/ saved before checkpoints/ (or a
  # lost checkpoints/) leaves. The rerun's step 1 scores 0: never best.
  shutil.rmtree(tmp_path / "checkpoints")
  _rising_scores(monkeypatch, score=0.0)
  capsys.readouterr()
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, max_steps=1, **common))
  out = capsys.readouterr().out
  assert (f"{tmp_path / 'best'} holds step 2, not the best step (0) that the resumed "
          "checkpoint of step 0 records: discarded") in out
  assert _saved_step(tmp_path / "best") is None and summary["train"]["best_step"] == 0
  assert f"Using weights from {tmp_path / 'checkpoints' / 'ckpt-1'}" in out


def test_threshold_cannot_change_while_training_is_unfinished_but_can_after(
    tmp_path, tiny_bert, tiny_corpus):
  common = dict(task="mltc", eval_every_steps=1, do_eval=False, do_predict=False)
  runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, max_steps=1, **common))
  # Two more steps would be judged at 0.3 against a best scored at 0.5.
  with pytest.raises(InputError, match=(
      r"^--threshold=0.3: the run in \S+ judged its dev scores \(best/, early stopping\) at "
      r"--threshold=0.5 and has not finished training \(step 1 of 3\); pass "
      r"--threshold=0.5 to finish it")):
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, max_steps=3, threshold=0.3,
                            **common))
  # Training finished: another threshold evaluates the best checkpoint under it.
  summary = runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, max_steps=1,
                                    threshold=0.3, **{**common, "do_train": False,
                                                      "do_eval": True}))
  assert "eval_dev" in summary
  with open(tmp_path / "thresholds.json") as f:
    assert set(json.load(f)["thresholds"].values()) == {0.3}


def _tiny_command(corpus, bert, output_dir, *extra):
  return [f"--data_dir={corpus}", f"--bert_model={bert}", f"--output_dir={output_dir}",
          "--task=mltc", "--max_seq_length=48", "--train_batch_size=8", "--window_size=3",
          "--precision=fp32", *extra]


def test_sigint_mid_training_saves_the_step_and_exits_130_in_one_line(
    tmp_path, tiny_bert, tiny_corpus):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  out = str(tmp_path)
  process = subprocess.Popen(
      [sys.executable, os.path.join(ROOT, "run_classifier.py"),
       *_tiny_command(tiny_corpus, tiny_bert, out, "--max_steps=5000", "--eval_every_steps=10",
                      "--do_train")],
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
  deadline = time.time() + 300
  while not os.path.exists(os.path.join(out, "history.jsonl")):  # the step-10 evaluation
    assert process.poll() is None and time.time() < deadline, "training never evaluated"
    time.sleep(0.05)
  process.send_signal(signal.SIGINT)
  stderr = process.communicate(timeout=300)[1]
  assert process.returncode == 130, stderr
  assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
  line = [l for l in stderr.splitlines() if l.strip()][-1]
  step = int(line.split("step ")[1].split(":")[0])
  assert line == (f"run_classifier.py: interrupted: step {step}: stopped by SIGINT after saving "
                  f"a checkpoint of step {step} in {os.path.join(out, 'checkpoints')}; rerun "
                  "the same command to continue from it")
  assert 10 <= step < 5000
  with open(os.path.join(out, "checkpoints", "checkpoint")) as f:
    assert f'model_checkpoint_path: "ckpt-{step}"' in f.read()


# Runs run_classifier.py in a process that sends itself SIGTERM once the SavedModel is
# written to its temporary folder, before that becomes a version.
_SIGTERM_IN_EXPORT = """
import os, signal, sys
sys.path.insert(0, {root!r})
sys.argv[0] = os.path.join({root!r}, "run_classifier.py")
import tensorflow as tf
real = tf.saved_model.save
def save(*args, **kwargs):
  real(*args, **kwargs)
  os.kill(os.getpid(), signal.SIGTERM)
tf.saved_model.save = save
import run_classifier
run_classifier.app.run(run_classifier.main, flags_parser=run_classifier.parse_flags)
"""


@pytest.mark.slow
def test_sigterm_during_the_export_exits_42_without_a_version_and_the_rerun_exports(
    tmp_path, tiny_bert, tiny_corpus):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  args = _tiny_command(tiny_corpus, tiny_bert, tmp_path, "--max_steps=2",
                       "--eval_every_steps=2", "--do_train", "--do_export")
  cut = subprocess.run([sys.executable, "-c", _SIGTERM_IN_EXPORT.format(root=ROOT), *args],
                       capture_output=True, text=True, env=env, cwd=ROOT)
  assert cut.returncode == PreemptedError.EXIT_CODE, cut.stderr
  assert "Traceback" not in cut.stderr, cut.stderr
  assert [l for l in cut.stderr.splitlines() if l.strip()][-1] == (
      "run_classifier.py: preempted: stopped by SIGTERM while exporting; what was finished "
      "is saved: rerun the same command to go on")
  assert export_versions.versions(str(tmp_path / "export")) == []
  rerun = subprocess.run([sys.executable, os.path.join(ROOT, "run_classifier.py"), *args],
                         capture_output=True, text=True, env=env, cwd=ROOT)
  assert rerun.returncode == 0, rerun.stderr
  assert "at step 2" in rerun.stdout
  assert os.listdir(tmp_path / "export") == ["1"]
  assert os.path.isfile(tmp_path / "export" / "1" / "saved_model.pb")


def test_sigterm_during_a_dev_evaluation_stops_between_batches_and_keeps_the_last_checkpoint(
    tmp_path, tiny_bert, tiny_corpus, monkeypatch):
  real, calls = evaluation.make_predict_fn, []

  def make_predict_fn(*args, **kwargs):
    predict = real(*args, **kwargs)

    def counted(*batch):
      calls.append(1)
      if len(calls) == 5:  # batch 1 of the 2nd evaluation (4 batches of 8 dev documents)
        os.kill(os.getpid(), signal.SIGTERM)
      return predict(*batch)
    return counted
  monkeypatch.setattr(evaluation, "make_predict_fn", make_predict_fn)
  with pytest.raises(PreemptedError) as stopped:
    runner.run(tiny_options(tiny_corpus, tiny_bert, tmp_path, task="mltc", max_steps=4,
                            eval_every_steps=2, eval_batch_size=8, do_eval=False,
                            do_predict=False))
  assert str(stopped.value) == (
      "step 4: stopped by SIGTERM during the dev evaluation of step 4, before saving it; the "
      "checkpoints on disk are those of step 2; rerun the same command to continue from them")
  assert stopped.value.exit_code == 42 and len(calls) == 5
  assert _saved_step(tmp_path / "checkpoints") == 2
