"""One encoder token per label (paper 3.2): which ids, and how their embeddings start.

Scheme ``unused`` (the authors'): label i takes the i-th ``[unusedN]`` vocabulary slot.
Scheme ``appended`` (our extension, for label sets larger than the unused slots, or
vocabularies without them): the word-embedding matrix grows by one row per label, and
label i takes id ``vocab_size + i``.

``--label_init=name`` (our extension) starts each label token's embedding at the mean
wordpiece embedding of the label's name (``cs.LG`` -> "cs lg", ``money-fx`` -> "money fx"),
or of its description from ``--label_descriptions`` (``label<TAB>text`` lines).
"""

import dataclasses
import os
import re
from typing import Dict, List, Optional, Sequence

import tensorflow as tf

from laco_tf.data import text_files, tokenization
from laco_tf.errors import InputError


@dataclasses.dataclass(frozen=True)
class LabelTokenPlan:
  scheme: str              # "unused", "appended" or "none" (w/o JE).
  token_ids: List[int]
  model_vocab_size: int    # The word-embedding rows the encoder must have.


def plan_label_tokens(vocab: Sequence[str], config_vocab_size: int, num_labels: int,
                      joint_embedding: bool = True) -> LabelTokenPlan:
  """Unused slots when there are enough, else new rows after the embedding matrix.

  Without joint embedding (the w/o-JE ablation) there are no label tokens: scheme "none".
  """
  if not joint_embedding:
    return LabelTokenPlan("none", [], config_vocab_size)
  try:
    return LabelTokenPlan("unused", tokenization.label_token_ids(vocab, num_labels),
                          config_vocab_size)
  except InputError as e:
    print(f"{e}: adding {num_labels} new label tokens instead, growing the word-embedding "
          f"matrix from {config_vocab_size} to {config_vocab_size + num_labels} rows")
  return LabelTokenPlan("appended", list(range(config_vocab_size,
                                              config_vocab_size + num_labels)),
                        config_vocab_size + num_labels)


def name_text(label: str) -> str:
  """The words of a label's name: ``cs.LG`` -> "cs lg", ``money-fx`` -> "money fx"."""
  spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", label)
  return " ".join(re.split(r"[^0-9A-Za-z]+", spaced)).strip().lower()


def read_descriptions(path: str, labels: Sequence[str]) -> Dict[str, str]:
  """``label<TAB>text`` lines -> {label: text}; unknown labels and bad lines are errors."""
  known, out = set(labels), {}
  if not os.path.isfile(path):
    raise InputError(f"--label_descriptions={path}: no such file")
  for number, text in enumerate(text_files.read_lines(path), start=1):
    where = f"{path}:{number}"
    if not text.strip():
      continue
    if "\t" not in text:
      raise InputError(f"{where}: expected 'label<TAB>description'")
    label, description = text.split("\t", 1)
    if label not in known:
      raise InputError(f"{where}: label {label!r} is not in the training label set")
    if not description.strip():
      raise InputError(f"{where}: empty description for {label!r}")
    out[label] = description.strip()
  return out


def prepare_embeddings(bert, plan: LabelTokenPlan, labels: Sequence[str], label_init: str,
                       vocab_file: str, do_lower_case: bool,
                       descriptions: Optional[Dict[str, str]] = None) -> None:
  """Initialises the label rows of `bert`'s word embeddings (a `BertEncoder` loaded with
  `plan.model_vocab_size` rows: `encoder.load_bert`)."""
  if bert.config.vocab_size < plan.model_vocab_size:
    raise ValueError(f"the encoder has {bert.config.vocab_size} word-embedding rows; the "
                     f"label tokens need {plan.model_vocab_size} (load it with that vocab_size)")
  if label_init == "random":
    return  # Unused slots keep their pre-trained rows; appended rows are freshly drawn.
  if label_init != "name":
    raise InputError(f"--label_init={label_init}: expected random or name")
  texts = [(descriptions or {}).get(l) or name_text(l) for l in labels]
  tokenizer = tokenization.make_tokenizer(vocab_file, do_lower_case)
  ids = tokenization.tokenize(tokenizer, tf.constant(texts))
  empty = [l for l, n in zip(labels, ids.row_lengths().numpy()) if n == 0]
  if empty:
    raise InputError(f"--label_init=name: no wordpieces in the name of {', '.join(empty)}; "
                     "give them a text with --label_descriptions")
  table = bert.word_embeddings
  means = tf.reduce_mean(tf.gather(table, ids), axis=1)
  index = tf.constant(plan.token_ids, tf.int64)[:, tf.newaxis]
  table.assign(tf.tensor_scatter_nd_update(table, index, means))
