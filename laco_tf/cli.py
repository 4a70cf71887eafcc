"""absl programs as commands (our extension): each lists its own flags in --help and exits
0 after it, and a bad flag or input ends in one line naming the command.

absl's --help lists the key flags of the module named by sys.argv[0]. Run as a file or
with `python -m`, that is the module defining the flags; run as an installed command, it is
pip's wrapper script, which defines none, so --help showed a bare usage line. `run` makes
the command's flags key flags of whatever sys.argv[0] is. absl also exits 1 after --help,
which scripts read as a failure.
"""

import os
import sys
from typing import Callable, NoReturn, Sequence

from absl import app
from absl import flags

HELP_ARGS = frozenset({"--help", "-help", "-?", "--helpshort", "-helpshort", "--helpfull",
                       "-helpfull", "--helpxml", "-helpxml"})
_program = None


def program() -> str:
  """The command's name in its messages: the one `run` was given, else argv[0]'s file."""
  return _program or os.path.basename(sys.argv[0])


def fail(message) -> NoReturn:
  sys.exit(f"{program()}: error: {message}")


def installed_name() -> str:
  """The name of an installed command (pip's wrapper script) as the user typed it."""
  return os.path.basename(sys.argv[0])


def _parse(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:  # absl would add a second line about --help
    fail(e)


def run(main: Callable, name: str, flag_modules: Sequence[str]) -> None:
  """`app.run(main)` as the command `name`, whose flags the modules named `flag_modules`
  define (a module run with `python -m` registers its flags under sys.argv[0] itself)."""
  global _program
  _program = name
  by_module = flags.FLAGS.flags_by_module_dict()
  for module in flag_modules:
    for flag in by_module.get(module, []):
      flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)
  before_passthrough = sys.argv[1:sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
  try:
    app.run(main, flags_parser=_parse)
  except SystemExit as e:
    if e.code == 1 and HELP_ARGS & set(before_passthrough):
      sys.exit(0)
    raise
