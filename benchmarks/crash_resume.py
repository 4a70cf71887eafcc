#!/usr/bin/env python3
"""Kill -9 survival: a real training process killed at five moments, then rerun.

  python benchmarks/crash_resume.py [--bert_model=minilm] [--seed=0] \\
      [--out=benchmarks/results/crash_resume]

An uninterrupted run of `run_classifier.py` on the bundled sample is the reference. Then,
for each moment below, the same command runs as a child process that SIGKILLs itself at
a random point inside that moment (chosen by --seed), and the same command is rerun
normally in the same output directory. Each rerun must: finish (exit 0); give the
reference's dev and test scores and probabilities (1e-6); leave no temporary file
(``*.tmp``, ``.tmp-*``, TF's ``*_temp*``/``*.tempstate*``); keep ``best/`` at the best
step and ``checkpoints/`` at the last; export a SavedModel that loads and scores texts
as the reference's export does.

The moments (how the child finds them: it wraps a function of ours and kills itself
inside it, so the point is exact and the production code has no hook):
- tfrecords: after chunk k of the training records was written to ``train.tfrecord.tmp``;
- mid_epoch: right after training step k (not an evaluation step);
- between_saves: after ``best/`` saved an improved step, before ``checkpoints/`` did;
- dev_eval: after batch 1 of the dev prediction at evaluation k;
- export: after ``tf.saved_model.save`` wrote the temporary export folder, before the rename.

Writes crash_resume.md (the table) and crash_resume.json.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
CHILD = "LACO_TF_CRASH_AT"  # "moment:k" makes this script the self-killing child
MOMENTS = ("tfrecords", "mid_epoch", "between_saves", "dev_eval", "export")
STEPS, EVAL_EVERY = 60, 20
TEXTS = ["oil prices rose as crude supply fell", "the central bank held interest rates",
         "the team won the final match"]


def _die():
  sys.stdout.flush()
  os.kill(os.getpid(), signal.SIGKILL)


def _install(moment: str, k: int) -> None:
  """Wraps one of our functions so that this process kills itself inside `moment`."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from laco_tf.data import input_packing  # pylint: disable=import-outside-toplevel
  from laco_tf.training import evaluation, train_step  # pylint: disable=import-outside-toplevel
  count = {"n": 0}
  if moment == "tfrecords":
    real = input_packing.pack_joint_input

    def pack(*args, **kwargs):
      count["n"] += 1
      if count["n"] == k + 1:  # chunks 1..k are in train.tfrecord.tmp
        _die()
      return real(*args, **kwargs)
    input_packing.pack_joint_input = pack
  elif moment == "mid_epoch":
    real = train_step.TrainStep.run

    def steps(self, iterator, num_steps):
      out = real(self, iterator, num_steps)
      if int(self.step.numpy()) >= k:
        _die()
      return out
    train_step.TrainStep.run = steps
  elif moment == "between_saves":
    real = tf.train.CheckpointManager.save

    def save(self, *args, **kwargs):
      step = kwargs.get("checkpoint_number")
      if os.path.basename(self.directory) == "checkpoints" and count.get("best") == step:
        _die()
      path = real(self, *args, **kwargs)
      if os.path.basename(self.directory) == "best" and step == k:
        count["best"] = step
      return path
    tf.train.CheckpointManager.save = save
  elif moment == "dev_eval":
    real = evaluation.predict_probabilities

    def predict(predict_fn, *args, **kwargs):
      count["n"] += 1
      if count["n"] != k:
        return real(predict_fn, *args, **kwargs)
      def dying(*a):
        out = predict_fn(*a)
        _die()
        return out
      return real(dying, *args, **kwargs)
    evaluation.predict_probabilities = predict
  elif moment == "export":
    real = tf.saved_model.save

    def save(*args, **kwargs):
      real(*args, **kwargs)
      _die()
    tf.saved_model.save = save
  else:
    raise ValueError(moment)


def _child() -> None:
  moment, k = os.environ.pop(CHILD).split(":")
  import run_classifier  # pylint: disable=import-outside-toplevel
  from absl import app  # pylint: disable=import-outside-toplevel
  _install(moment, int(k))
  sys.argv = [run_classifier.__file__] + sys.argv[1:]
  app.run(run_classifier.main, flags_parser=run_classifier.parse_flags)


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


def _command(args, output_dir, crash):
  program = os.path.abspath(__file__) if crash else os.path.join(ROOT, "run_classifier.py")
  return [sys.executable, program, "--task=clcp", f"--data_dir={os.path.join(ROOT, 'data', 'sample')}",
          f"--bert_model={args.bert_model}", f"--output_dir={output_dir}", f"--seed={args.seed}",
          f"--max_steps={STEPS}", f"--eval_every_steps={EVAL_EVERY}", "--train_batch_size=8",
          "--max_doc_tokens=64"]


def _run(args, output_dir, crash=None):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  if crash:
    env[CHILD] = crash
  t0 = time.time()
  done = subprocess.run(_command(args, output_dir, crash), capture_output=True, text=True, env=env,
                        cwd=ROOT)
  return done, time.time() - t0


def _leftovers(output_dir):
  bad = []
  for dirpath, dirnames, filenames in os.walk(output_dir):
    for name in dirnames + filenames:
      if name.endswith(".tmp") or name.startswith(".tmp") or "_temp" in name or (
          "tempstate" in name):
        bad.append(os.path.relpath(os.path.join(dirpath, name), output_dir))
  return bad


def _results(output_dir):
  import numpy as np  # pylint: disable=import-outside-toplevel
  out = {}
  for split in ("dev", "test"):
    with open(os.path.join(output_dir, f"eval_results_{split}.json")) as f:
      out[f"scores_{split}"] = {k: v for k, v in json.load(f).items()
                                if isinstance(v, (int, float))}
    with open(os.path.join(output_dir, f"predictions_{split}.jsonl")) as f:
      out[f"probs_{split}"] = np.array(
          [list(json.loads(l)["probabilities"].values()) for l in f])
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


def _check(output_dir, reference):
  import numpy as np  # pylint: disable=import-outside-toplevel
  got = _results(output_dir)
  with open(os.path.join(output_dir, "run_summary.json")) as f:
    summary = json.load(f)
  checks = {
      "same scores": all(
          abs(got[f"scores_{s}"][m] - reference[f"scores_{s}"][m]) <= 1e-9
          for s in ("dev", "test") for m in reference[f"scores_{s}"]),
      "same probabilities": all(
          np.allclose(got[f"probs_{s}"], reference[f"probs_{s}"], atol=1e-6, rtol=0)
          for s in ("dev", "test")),
      "no temporary file": not _leftovers(output_dir),
      "best/ at the best step": _checkpoint_step(os.path.join(output_dir, "best")) ==
                                summary["train"]["best_step"] == reference["best_step"],
      "checkpoints/ at the last step": _checkpoint_step(
          os.path.join(output_dir, "checkpoints")) == STEPS,
      "SavedModel loads, same scores": bool(np.allclose(
          _export_scores(output_dir), reference["export"], atol=1e-5)),
  }
  return checks, _leftovers(output_dir)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--bert_model", default="minilm")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", default=os.path.join(HERE, "results", "crash_resume"))
  parser.add_argument("--work_dir", default=None, help="run directories (default: a temp dir)")
  args = parser.parse_args()
  work = args.work_dir or tempfile.mkdtemp(prefix="crash_resume_")
  rng = random.Random(args.seed)
  ref_dir = os.path.join(work, "reference")
  shutil.rmtree(ref_dir, ignore_errors=True)
  done, seconds = _run(args, ref_dir)
  if done.returncode:
    sys.exit(f"the reference run failed:\n{done.stderr[-3000:]}")
  print(f"reference: {seconds:.0f} s")
  reference = _results(ref_dir)
  with open(os.path.join(ref_dir, "run_summary.json")) as f:
    reference["best_step"] = json.load(f)["train"]["best_step"]
  reference["export"] = _export_scores(ref_dir)
  with open(os.path.join(ref_dir, "history.jsonl")) as f:
    best_steps = [r["step"] for r in map(json.loads, f) if r["best"]]
  if not best_steps:
    sys.exit("the reference run never improved on dev: nothing to kill between saves")
  rows = []
  for moment in MOMENTS:
    k = _point(moment, rng, best_steps)
    out_dir = os.path.join(work, moment)
    shutil.rmtree(out_dir, ignore_errors=True)
    killed, kill_seconds = _run(args, out_dir, crash=f"{moment}:{k}")
    left = _leftovers(out_dir)
    rerun, rerun_seconds = _run(args, out_dir)
    row = {"moment": moment, "point": k, "killed_exit": killed.returncode,
           "left_by_kill": left, "rerun_exit": rerun.returncode,
           "seconds": [round(kill_seconds, 1), round(rerun_seconds, 1)]}
    if rerun.returncode == 0:
      row["checks"], row["left_after_rerun"] = _check(out_dir, reference)
    else:
      row["checks"], row["stderr"] = {}, rerun.stderr[-2000:]
    row["ok"] = (killed.returncode == -signal.SIGKILL and rerun.returncode == 0 and
                 all(row["checks"].values()))
    rows.append(row)
    print(json.dumps(row))
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "crash_resume.json"), "w") as f:
    json.dump({"bert_model": args.bert_model, "seed": args.seed, "steps": STEPS,
               "eval_every_steps": EVAL_EVERY, "rows": rows}, f, indent=1)
  names = list(max((r["checks"] for r in rows), key=len))  # a failed rerun has none
  lines = ["| killed during | at | killed by SIGKILL | left by the kill | rerun exit | " +
           " | ".join(names) + " |", "| --- " * (5 + len(names)) + "|"]
  for r in rows:
    lines.append(f"| {r['moment']} | {r['point']} | {r['killed_exit'] == -signal.SIGKILL} | "
                 f"{', '.join(r['left_by_kill']) or '-'} | {r['rerun_exit']} | " +
                 " | ".join(str(r["checks"].get(n, "-")) for n in names) + " |")
  with open(os.path.join(args.out, "crash_resume.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))
  if not args.work_dir:
    shutil.rmtree(work, ignore_errors=True)
  sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
  if CHILD in os.environ:
    _child()
  else:
    main()
