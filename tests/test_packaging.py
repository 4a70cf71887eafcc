"""pyproject.toml: the wheel holds the package (no top-level module) and the commands."""

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_wheel_installs_the_package_and_its_commands(tmp_path):
  src = tmp_path / "src"
  src.mkdir()
  for name in ("pyproject.toml", "README.md", "run_classifier.py", "flags.py"):
    shutil.copy(os.path.join(ROOT, name), src / name)
  shutil.copytree(os.path.join(ROOT, "laco_tf"), src / "laco_tf",
                  ignore=shutil.ignore_patterns("__pycache__"))
  # Offline with the environment's setuptools when it has one (Python 3.11 venvs do).
  isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
  subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w",
                  str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
  (wheel,) = os.listdir(tmp_path / "dist")
  with zipfile.ZipFile(tmp_path / "dist" / wheel) as z:
    names = set(z.namelist())
    entry_points = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
  modules = {n for n in names if n.endswith(".py")}
  expected = {
      os.path.relpath(os.path.join(d, f), ROOT)
      for d, _, files in os.walk(os.path.join(ROOT, "laco_tf")) for f in files
      if f.endswith(".py")}
  assert modules == expected
  for line in ("laco-tf-train = laco_tf.train_command:console",
               "laco-tf-baselines = laco_tf.study.baselines:console",
               "laco-tf-analyze = laco_tf.study.analyze:console",
               "laco-tf-multi-seed = laco_tf.study.multi_seed:console",
               "laco-tf-facets-table = laco_tf.study.facets_table:console"):
    assert line in entry_points
  _installed_commands_explain_themselves(tmp_path, tmp_path / "dist" / wheel)


# Each command, a flag its --help must list, and a bad value of one of its flags.
_COMMANDS = [("laco-tf-train", "--max_doc_tokens", "--train_batch_size=many"),
             ("laco-tf-baselines", "--svm_c", "--method=svm"),
             ("laco-tf-analyze", "--compare_run_dir", "--nosuch_flag"),
             ("laco-tf-multi-seed", "--runs_a", "--split=train"),
             ("laco-tf-facets-table", "--run", "--nosuch_flag")]


def _installed_commands_explain_themselves(tmp_path, wheel):
  """The wheel's commands, installed by pip: --help lists the command's own flags and exits
  0; a bad flag is one line naming the command."""
  target = tmp_path / "installed"
  subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                  "--target", str(target), str(wheel)], check=True, capture_output=True)
  env = {**os.environ, "PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"}
  for command, flag, bad in _COMMANDS:
    path = str(target / "bin" / command)
    helped = subprocess.run([sys.executable, path, "--help"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, check=False)
    assert helped.returncode == 0, (command, helped.stderr)
    assert f"  {flag}:" in helped.stdout, (command, helped.stdout)
    refused = subprocess.run([sys.executable, path, bad], capture_output=True, text=True,
                             env=env, cwd=tmp_path, check=False)
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{command}: error: "), (command, lines)
