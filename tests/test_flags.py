"""flags.py, RunOptions and the README's flag table stay in step."""

import dataclasses
import os
import re

from absl import flags as absl_flags

import flags  # noqa: F401  pylint: disable=unused-import
from laco_tf.run_settings import RunOptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_flag_has_a_run_option_with_the_same_default():
  fields = {f.name: f.default for f in dataclasses.fields(RunOptions)}
  defined = {f.name for f in absl_flags.FLAGS.get_flags_for_module(flags)}
  assert defined == set(fields)
  for name, default in fields.items():
    assert absl_flags.FLAGS[name].default == default, name
    assert absl_flags.FLAGS[name].help, name


def test_readme_flag_table_lists_every_flag():
  with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  listed = set(re.findall(r"`--([a-z_]+)`", readme))
  assert {f.name for f in dataclasses.fields(RunOptions)} <= listed
