"""WordPiece tokenisation shared by TFRecord conversion and the exported SavedModel.

Both paths call the same `tensorflow_text.BertTokenizer`, built by `make_tokenizer`, so
training ids and serving ids cannot drift apart.
"""

import hashlib
import re
from typing import List, Sequence

import tensorflow as tf
import tensorflow_text as tf_text

from laco_tf.errors import InputError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_UNUSED = re.compile(r"^\[unused(\d+)\]$")


def read_vocab(vocab_path: str) -> List[str]:
  try:
    with open(vocab_path, encoding="utf-8") as f:
      return [line.rstrip("\n") for line in f]
  except UnicodeDecodeError as e:
    raise InputError(f"{vocab_path}: not valid UTF-8 (byte {e.start}); expected a WordPiece "
                     "vocabulary, one token per line") from None


def vocab_hash(vocab_path: str) -> str:
  with open(vocab_path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()[:16]


def make_tokenizer(vocab_path, lower_case: bool) -> tf_text.BertTokenizer:
  """The WordPiece tokenizer; `vocab_path` is a path string or a `tf.saved_model.Asset`."""
  return tf_text.BertTokenizer(vocab_path, lower_case=lower_case, token_out_type=tf.int64,
                               unknown_token="[UNK]")


def tokenize(tokenizer: tf_text.BertTokenizer, texts: tf.Tensor) -> tf.RaggedTensor:
  """[batch] strings -> ragged [batch, (wordpieces)] int64 ids."""
  return tokenizer.tokenize(texts).merge_dims(-2, -1)


def special_token_ids(vocab: Sequence[str]) -> dict:
  index = {t: i for i, t in enumerate(vocab)}
  missing = [t for t in ("[CLS]", "[SEP]", "[UNK]") if t not in index]
  if missing:
    raise InputError(f"vocabulary lacks {', '.join(missing)} (expected a BERT WordPiece vocab)")
  return {"cls": index["[CLS]"], "sep": index["[SEP]"], "unk": index["[UNK]"]}


def label_token_ids(vocab: Sequence[str], num_labels: int) -> List[int]:
  """One dedicated vocabulary id per label: the `[unusedN]` slots in order of N (paper 3.2).

  The authors' release likewise maps label i to an unused slot; special tokens are
  never used, even if a vocabulary names one like an unused slot.
  """
  slots = sorted((int(m.group(1)), i) for i, t in enumerate(vocab)
                 if (m := _UNUSED.match(t)) and t not in SPECIAL_TOKENS)
  if len(slots) < num_labels:
    raise InputError(f"label set has {num_labels} labels but the vocabulary has only "
                     f"{len(slots)} [unusedN] slots for label tokens "
                     f"(short by {num_labels - len(slots)})")
  return [i for _, i in slots[:num_labels]]
