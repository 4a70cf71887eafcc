"""Loads Google's TF1 BERT release checkpoints (``bert_model.ckpt``) into a `BertEncoder`.

The release stores name-based variables (``bert/embeddings/word_embeddings``,
``bert/encoder/layer_N/attention/self/query/kernel``, ...) in Keras' layouts (Dense
kernels [in, out]), so each is assigned to the encoder variable that the Hugging Face
name table of `bert_weights.huggingface_names` gives for it. Skipped: the pooler (LACO
reads the last hidden states, paper 3.2), the pre-training heads (``cls/...``), optimizer
slots (``.../adam_m``, ``.../adam_v``) and step counters. Anything else unexpected, any
encoder variable left unassigned and any shape mismatch is one error line listing names.
"""

import logging
import re
from typing import Dict

import tensorflow as tf

from laco_tf.errors import InputError
from laco_tf.modeling import bert_weights
from laco_tf.modeling.bert_encoder import BertEncoder

_SKIPPED = re.compile(r"^(cls/|global_step$|bert/pooler/)|/adam_[mv]$|^bad_steps$|"
                      r"^good_steps$|^loss_scale$")
_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings")


def tf1_name(huggingface_name: str) -> str:
  """A Hugging Face (PyTorch) encoder name -> the Google release's:
  ``encoder.layer.0.attention.self.query.weight`` ->
  ``bert/encoder/layer_0/attention/self/query/kernel``."""
  parts = re.sub(r"\blayer\.(\d+)\.", r"layer_\1.", huggingface_name).split(".")
  if parts[-2] in _EMBEDDINGS:
    parts = parts[:-1]
  elif parts[-2] == "LayerNorm":
    parts[-1] = {"weight": "gamma", "bias": "beta"}[parts[-1]]
  else:
    parts[-1] = {"weight": "kernel", "bias": "bias"}[parts[-1]]
  return "bert/" + "/".join(parts)


def tf1_names(encoder: BertEncoder) -> Dict[str, tf.Variable]:
  """Each encoder variable under the Google release's name for it."""
  return {tf1_name(n): v for n, (v, _) in bert_weights.huggingface_names(encoder).items()}


def load_tf1_checkpoint(encoder: BertEncoder, checkpoint_path: str) -> None:
  """Assigns every variable of `encoder` from the TF1 checkpoint."""
  try:
    reader = tf.train.load_checkpoint(checkpoint_path)
  except (tf.errors.NotFoundError, ValueError, tf.errors.DataLossError) as e:
    raise InputError(f"--init_checkpoint={checkpoint_path}: not a readable TF checkpoint "
                     f"({str(e).splitlines()[0]})") from None
  shapes = reader.get_variable_to_shape_map()
  skipped = sorted(n for n in shapes if _SKIPPED.search(n))
  logging.debug("Skipping %d pooler/pre-training/optimizer variables: %s", len(skipped), skipped)
  wanted = tf1_names(encoder)
  missing = sorted(n for n in wanted if n not in shapes)
  unexpected = sorted(n for n in shapes if n not in wanted and not _SKIPPED.search(n))
  mismatched = sorted(f"{n} {shapes[n]} vs {v.shape.as_list()}" for n, v in wanted.items()
                      if n in shapes and list(shapes[n]) != v.shape.as_list() and
                      not _extra_label_rows(n, shapes[n], v))
  problems = [f"{what}: {', '.join(names)}" for what, names in (
      ("missing encoder variables", missing), ("unexpected variables", unexpected),
      ("shape mismatches (checkpoint vs config)", mismatched)) if names]
  if problems:
    raise InputError(f"--init_checkpoint={checkpoint_path} does not fit the BERT config: "
                     + "; ".join(problems))
  for name, variable in wanted.items():
    value = reader.get_tensor(name)
    if value.shape[0] < variable.shape[0]:  # Label tokens appended after the vocabulary.
      value = tf.concat([value, variable[value.shape[0]:]], axis=0)
    variable.assign(value)


def _extra_label_rows(name: str, shape, variable: tf.Variable) -> bool:
  """The encoder's word embeddings may have rows beyond the release's: label tokens
  appended after the vocabulary (`label_tokens.py`), which keep their initial values."""
  want = variable.shape.as_list()
  return (name == "bert/embeddings/word_embeddings" and len(shape) == 2 and
          shape[1] == want[1] and shape[0] <= want[0])
