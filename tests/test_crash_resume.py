"""Kill -9 survival: a real training process killed at five moments, then rerun.

An uninterrupted `run_classifier.py` run on the bundled sample (LACO+clcp, 60 steps, dev
every 20) is the reference. Then, for each moment below, the same command runs as a child
process that SIGKILLs itself at a point inside that moment (drawn from the seed), and the
same command is rerun normally in the same output directory. Each rerun must: finish
(exit 0); give the reference's dev and test scores (1e-9) and probabilities (1e-6);
leave no temporary file (``*.tmp``, ``.tmp-*``, TF's ``*_temp*``/``*.tempstate*``); keep
``best/`` at the best step and ``checkpoints/`` at the last; export a SavedModel that
loads and scores texts as the reference's export does.

The moments (the child wraps a function of ours and kills itself inside it, so the point
is exact and the production code has no hook):
- tfrecords: after chunk k of the training records was written to ``train.tfrecord.tmp``;
- mid_epoch: right after training step k (not an evaluation step);
- between_saves: after ``checkpoints/`` saved an improved step k, before ``best/`` did
  (the trainer saves checkpoints/ first, so best/ is left one best behind);
- dev_eval: after batch 1 of the dev prediction at evaluation k;
- export: after ``tf.saved_model.save`` wrote the temporary export folder, before the rename.

The encoder is conftest.py's tiny random BERT: a Hugging Face directory, loaded,
tokenised, trained, checkpointed and exported by the same code as the embedded MiniLM
(``--bert_model=minilm`` is that package's Hugging Face directory). To run on MiniLM as
benchmarks/crash_resume.py did (some 20 minutes on 2 cores), set
LACO_TF_CRASH_RESUME_BERT=minilm; LACO_TF_CRASH_RESUME_SEED (default 0) draws other
points and seeds the runs. Formerly benchmarks/crash_resume.py; its last table is in
benchmarks/results/crash_resume/.
"""

import json
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # eleven training runs: several minutes on 2 cores

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = "LACO_TF_CRASH_AT"  # "moment:k" makes `python -m tests.test_crash_resume` the child
MOMENTS = ("tfrecords", "mid_epoch", "between_saves", "dev_eval", "export")
STEPS, EVAL_EVERY = 60, 20
SEED = int(os.environ.get("LACO_TF_CRASH_RESUME_SEED", "0"))
TEXTS = ["oil prices rose as crude supply fell", "the central bank held interest rates",
         "the team won the final match"]


def _die(moment, k):
  print(f"crash_resume: SIGKILL at {moment}:{k}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  os.kill(os.getpid(), signal.SIGKILL)


def _kill_in_tfrecords(k):
  from laco_tf.data import input_packing  # pylint: disable=import-outside-toplevel
  real, calls = input_packing.pack_joint_input, [0]

  def pack(*args, **kwargs):
    calls[0] += 1
    if calls[0] == k + 1:  # chunks 1..k are in train.tfrecord.tmp
      _die("tfrecords", k)
    return real(*args, **kwargs)
  input_packing.pack_joint_input = pack


def _kill_mid_epoch(k):
  from laco_tf.training import train_step  # pylint: disable=import-outside-toplevel
  real = train_step.TrainStep.run

  def run(self, iterator, num_steps):
    out = real(self, iterator, num_steps)
    if int(self.step.numpy()) >= k:
      _die("mid_epoch", k)
    return out
  train_step.TrainStep.run = run


def _kill_between_saves(k):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  real, latest = tf.train.CheckpointManager.save, {}

  def save(self, *args, **kwargs):
    step = kwargs.get("checkpoint_number", args[0] if args else None)
    which = os.path.basename(self.directory)
    if which == "best" and step == k and latest.get("step") == k:
      _die("between_saves", k)
    path = real(self, *args, **kwargs)
    if which == "checkpoints":
      latest["step"] = step
    return path
  tf.train.CheckpointManager.save = save


def _kill_in_dev_eval(k):
  from laco_tf.training import evaluation  # pylint: disable=import-outside-toplevel
  real, calls = evaluation.predict_probabilities, [0]

  def predict(predict_fn, *args, **kwargs):
    calls[0] += 1
    if calls[0] != k:
      return real(predict_fn, *args, **kwargs)

    def dying(*a):
      out = predict_fn(*a)
      _die("dev_eval", k)
      return out
    return real(dying, *args, **kwargs)
  evaluation.predict_probabilities = predict


def _kill_in_export(k):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  real = tf.saved_model.save

  def save(*args, **kwargs):
    real(*args, **kwargs)
    _die("export", k)
  tf.saved_model.save = save


def _child() -> None:
  """Runs run_classifier.py's command with one of our functions wrapped to kill it."""
  moment, k = os.environ.pop(CHILD).split(":")
  from laco_tf import train_command  # pylint: disable=import-outside-toplevel
  {"tfrecords": _kill_in_tfrecords, "mid_epoch": _kill_mid_epoch,
   "between_saves": _kill_between_saves, "dev_eval": _kill_in_dev_eval,
   "export": _kill_in_export}[moment](int(k))
  sys.argv = [os.path.join(ROOT, "run_classifier.py")] + sys.argv[1:]
  train_command.run_as("run_classifier.py")


def _point(moment: str, rng: random.Random, best_steps) -> int:
  if moment == "tfrecords":
    return rng.randint(1, 3)  # 800 training records: chunks of 256, the 4th is partial
  if moment == "mid_epoch":
    return rng.choice([s for s in range(2, STEPS) if s % EVAL_EVERY])
  if moment == "between_saves":
    return rng.choice(best_steps)  # the steps at which the reference saved an improvement
  if moment == "dev_eval":
    return rng.randint(1, STEPS // EVAL_EVERY)
  return 1


def _run(bert, output_dir, crash=None):
  program = ["-m", "tests.test_crash_resume"] if crash else [
      os.path.join(ROOT, "run_classifier.py")]
  command = [sys.executable, *program, "--task=clcp",
             f"--data_dir={os.path.join(ROOT, 'data', 'sample')}", f"--bert_model={bert}",
             f"--output_dir={output_dir}", f"--seed={SEED}", f"--max_steps={STEPS}",
             f"--eval_every_steps={EVAL_EVERY}", "--train_batch_size=8", "--max_doc_tokens=64"]
  if bert != "minilm":  # a random encoder learns the sample within 60 steps at these rates
    command += ["--learning_rate=1e-3", "--head_learning_rate=1e-2"]
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  if crash:
    env[CHILD] = crash
  return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)


def _leftovers(output_dir):
  bad = []
  for dirpath, dirnames, filenames in os.walk(output_dir):
    for name in dirnames + filenames:
      if name.endswith(".tmp") or name.startswith(".tmp") or "_temp" in name or (
          "tempstate" in name):
        bad.append(os.path.relpath(os.path.join(dirpath, name), output_dir))
  return bad


def _results(output_dir):
  out = {}
  for split in ("dev", "test"):
    with open(os.path.join(output_dir, f"eval_results_{split}.json")) as f:
      out[f"scores_{split}"] = {k: v for k, v in json.load(f).items()
                                if isinstance(v, (int, float))}
    with open(os.path.join(output_dir, f"predictions_{split}.jsonl")) as f:
      out[f"probs_{split}"] = np.array(
          [list(json.loads(l)["probabilities"].values()) for l in f])
  with open(os.path.join(output_dir, "run_summary.json")) as f:
    out["best_step"] = json.load(f)["train"]["best_step"]
  return out


def _checkpoint_step(directory):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  path = tf.train.latest_checkpoint(directory)
  return int(path.rsplit("-", 1)[1]) if path else None


def _export_scores(output_dir):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  import tensorflow_text  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  from laco_tf.serving import export_versions  # pylint: disable=import-outside-toplevel
  loaded = tf.saved_model.load(export_versions.resolve_export(os.path.join(output_dir, "export")))
  return loaded.signatures["serving_default"](text=tf.constant(TEXTS))["scores"].numpy()


@pytest.fixture(scope="module")
def bert(request):
  return os.environ.get("LACO_TF_CRASH_RESUME_BERT") or request.getfixturevalue("tiny_bert")


@pytest.fixture(scope="module")
def reference(bert, tmp_path_factory):
  """The uninterrupted run's results, and the kill point of each moment."""
  ref_dir = str(tmp_path_factory.mktemp("crash_resume") / "reference")
  done = _run(bert, ref_dir)
  assert done.returncode == 0, f"the reference run failed:\n{done.stderr[-3000:]}"
  reference = _results(ref_dir)
  reference["export"] = _export_scores(ref_dir)
  with open(os.path.join(ref_dir, "history.jsonl")) as f:
    best_steps = [r["step"] for r in map(json.loads, f) if r["best"]]
  assert best_steps, "the reference run never improved on dev: nothing to kill between saves"
  rng = random.Random(SEED)  # the points in MOMENTS order, whichever tests run
  reference["points"] = {moment: _point(moment, rng, best_steps) for moment in MOMENTS}
  return reference


def _assert_as_the_reference(output_dir, reference):
  got = _results(output_dir)
  for split in ("dev", "test"):
    for metric, value in reference[f"scores_{split}"].items():
      score = got[f"scores_{split}"].get(metric)
      assert score is not None and abs(score - value) <= 1e-9, (
          f"rule 'same scores' failed: {split} {metric} {score} against the reference's "
          f"{value}")
    np.testing.assert_allclose(got[f"probs_{split}"], reference[f"probs_{split}"], atol=1e-6,
                               rtol=0, err_msg=f"rule 'same probabilities' failed ({split})")
  assert not _leftovers(output_dir), f"rule 'no temporary file' failed: {_leftovers(output_dir)}"
  best = _checkpoint_step(os.path.join(output_dir, "best"))
  assert best == got["best_step"] == reference["best_step"], (
      f"rule 'best/ at the best step' failed: best/ holds step {best}, run_summary.json says "
      f"{got['best_step']}, the reference's best step is {reference['best_step']}")
  latest = _checkpoint_step(os.path.join(output_dir, "checkpoints"))
  assert latest == STEPS, (f"rule 'checkpoints/ at the last step' failed: step {latest}, "
                           f"not {STEPS}")
  np.testing.assert_allclose(_export_scores(output_dir), reference["export"], atol=1e-5,
                             rtol=1e-5, err_msg="rule 'SavedModel loads, same scores' failed")


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_run_killed_by_sigkill_reruns_to_the_uninterrupted_results(moment, bert, reference,
                                                                     tmp_path):
  k = reference["points"][moment]
  output_dir = str(tmp_path / moment)
  killed = _run(bert, output_dir, crash=f"{moment}:{k}")
  assert killed.returncode == -signal.SIGKILL, (
      f"rule 'killed by SIGKILL' failed at {moment}:{k}: exit {killed.returncode}; "
      f"stderr:\n{killed.stderr[-3000:]}")
  assert f"crash_resume: SIGKILL at {moment}:{k}" in killed.stderr, (
      f"the kill did not come from the {moment} hook: stderr:\n{killed.stderr[-3000:]}")
  if moment == "between_saves":  # the kill struck between the saves: best/ is behind
    best = _checkpoint_step(os.path.join(output_dir, "best"))
    latest = _checkpoint_step(os.path.join(output_dir, "checkpoints"))
    assert latest == k and best != k, (
        f"the between_saves kill left checkpoints/ at {latest}, best/ at {best} (expected "
        f"checkpoints/ at {k}, best/ behind it)")
  left = _leftovers(output_dir)  # what the kill left half-written (the rerun must clear it)
  rerun = _run(bert, output_dir)
  assert rerun.returncode == 0, (f"rule 'the rerun finishes (exit 0)' failed after {moment}:{k} "
                                 f"(the kill left {left}); stderr:\n{rerun.stderr[-3000:]}")
  _assert_as_the_reference(output_dir, reference)


if __name__ == "__main__":
  if CHILD in os.environ:
    _child()
