"""SIGTERM to a real training process: checkpoint at the current step, exit 42, exact rerun."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from laco_tf.errors import PreemptedError

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
