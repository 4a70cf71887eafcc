"""The rules every line-oriented input file is read by (corpus files, cats.txt, label
descriptions, labels.txt), and the characters a label may hold.

Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` and nowhere else: a form feed, U+0085 or U+2028
inside a document is part of its text (``str.splitlines`` would break there). A UTF-8 byte
order mark is dropped at the very start of a file only; anywhere else it is a character,
kept in texts and refused in labels.
"""

import codecs
import re
import unicodedata
from typing import List

from laco_tf.errors import InputError

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
_UTF8_BOM = b"\xef\xbb\xbf"

# Format characters that are part of how words are spelled (Persian, Indic scripts, emoji
# sequences); every other format character is invisible markup a label must not carry.
_JOINERS = frozenset("\u200c\u200d")
_REFUSED_CATEGORIES = {
    "Cc": "a control character", "Cf": "an invisible format character",
    "Cs": "a lone surrogate, not a Unicode character", "Zl": "a line separator",
    "Zp": "a paragraph separator"}


def split_lines(text: str) -> List[str]:
  """`text` split at ``\\n``, ``\\r\\n`` and ``\\r``; a final line break ends the last line
  rather than starting an empty one."""
  lines = _LINE_BREAK.split(text)
  if lines[-1] == "":
    lines.pop()
  return lines


def read_lines(path: str, encoding: str = "utf-8") -> List[str]:
  """Decodes `path` (UTF-8 with or without a leading BOM by default) into its lines.

  An unreadable file or a bad byte is an `InputError` naming the file (and line).
  """
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise InputError(f"{path}: cannot read ({e.strerror or e})") from None
  if codecs.lookup(encoding).name == "utf-8" and raw.startswith(_UTF8_BOM):
    raw = raw[len(_UTF8_BOM):]
  try:
    return split_lines(raw.decode(encoding))
  except UnicodeDecodeError as e:
    before = _LINE_BREAK_BYTES.split(raw[:e.start])
    raise InputError(f"{path}:{len(before)}: not valid {encoding.upper()} (byte "
                     f"0x{raw[e.start]:02x} at column {len(before[-1]) + 1})") from None


def refused_character(s: str) -> str:
  """Describes the first character of `s` that may not be in a label ("U+FEFF (ZERO WIDTH
  NO-BREAK SPACE), an invisible format character"), or returns "" when there is none."""
  for c in s:
    kind = _REFUSED_CATEGORIES.get(unicodedata.category(c))
    if kind and c not in _JOINERS:
      name = unicodedata.name(c, "")
      return f"U+{ord(c):04X}" + (f" ({name})" if name else "") + f", {kind}"
  return ""


def check_label(label: str, where: str) -> str:
  """`label` without surrounding spaces; a blank one, or one holding a line break, control
  or invisible format character (it would split labels.txt, or two labels would look the
  same), is an `InputError` at `where`."""
  bad = refused_character(label)
  if bad:
    raise InputError(f"{where}: label {label!r} contains {bad} (expected visible text)")
  if not label.strip():
    raise InputError(f"{where}: an empty label (expected non-blank strings)")
  return label.strip()
