"""What an option of a run is, and what is made from the declarations in `options.py`.

Each option is declared once, with its type, default, help text, choices and how a
resumed run treats it. From the declarations come the absl flags (`define_flags`), the
`RunOptions` dataclass, `TrainConfig`'s defaults, the resume guard's sets and the
README's flag table (`markdown_table`). Imports no TensorFlow.
"""

import dataclasses
from typing import Any, Optional, Sequence

# How a run resumed in the same output directory treats a changed value.
MODEL = "model"  # defines the run: a change is refused (or needs --overwrite_output_dir)
FREE = "free"  # says what to do now, or when to stop: may change
SPEED = "speed"  # how fast the same model trains: recorded in run_config.json, may change
_NOT_SET = object()


@dataclasses.dataclass(frozen=True)
class Option:
  """One option: a flag of run_classifier.py and a field of RunOptions."""
  name: str
  kind: type  # bool, int, float or str
  default: Any
  section: str
  help: str
  choices: Optional[Sequence[str]] = None
  shown: Optional[str] = None  # the default as the table shows it, when not its value
  note: Optional[str] = None  # beside the default in the table, e.g. the paper's value
  resume: str = MODEL
  # What the option meant for runs recorded before it existed (their run_config.json has
  # no value for it); unset: None.
  before: Any = _NOT_SET

  @property
  def has_before(self) -> bool:
    return self.before is not _NOT_SET


_DEFINE = {bool: "DEFINE_bool", int: "DEFINE_integer", float: "DEFINE_float",
           str: "DEFINE_string"}


def define_flags(options: Sequence[Option], flag_values, module_name: str) -> None:
  """An absl flag per option, attributed to `module_name` (whose --help lists them)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  for o in options:
    if o.choices:
      flags.DEFINE_enum(o.name, o.default, list(o.choices), o.help, flag_values=flag_values,
                        module_name=module_name)
    else:
      getattr(flags, _DEFINE[o.kind])(o.name, o.default, o.help, flag_values=flag_values,
                                      module_name=module_name)


def make_dataclass(options: Sequence[Option], name: str, doc: str):
  """A dataclass with one field per option, in order, with its default; `from_flags`
  builds one from parsed absl flags."""
  fields = [(o.name, Optional[o.kind] if o.default is None else o.kind,
             dataclasses.field(default=o.default)) for o in options]

  def from_flags(cls, flag_values):
    return cls(**{o.name: flag_values[o.name].value for o in options})

  cls = dataclasses.make_dataclass(name, fields,
                                   namespace={"from_flags": classmethod(from_flags)})
  cls.__doc__ = doc
  return cls


def _default_text(o: Option) -> str:
  if o.shown is not None:
    return o.shown
  if o.kind is bool:
    text = "true" if o.default else "false"
  elif o.kind is str:
    text = f"`{o.default}`"
  else:
    text = f"{o.default:g}"
  return f"{text} ({o.note})" if o.note else text


_RESUME_TEXT = {MODEL: "", FREE: "may change", SPEED: "may change (recorded)"}


def markdown_table(options: Sequence[Option], aliases: dict, sections: dict) -> str:
  """The README's flag table: flag, default, meaning, and what a resume allows, a row
  naming each section (`sections`: section -> title) before its options. `aliases` maps
  an option to another name of its flag."""
  lines = ["| flag | default | meaning | on resume |", "| --- | --- | --- | --- |"]
  section = None
  for o in options:
    if o.section != section:
      section = o.section
      lines.append(f"| **{sections[section]}** | | | |")
    flag = f"`--{o.name}`" + (f" (alias `--{aliases[o.name]}`)" if o.name in aliases else "")
    lines.append(f"| {flag} | {_default_text(o)} | {o.help} | {_RESUME_TEXT[o.resume]} |")
  return "\n".join(lines) + "\n"
