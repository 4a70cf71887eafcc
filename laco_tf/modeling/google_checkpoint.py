"""Loads Google's TF1 BERT release checkpoints (``bert_model.ckpt``) into `TFBertModel`.

The release stores name-based variables (``bert/embeddings/word_embeddings``,
``bert/encoder/layer_N/attention/self/query/kernel``, ..., ``bert/pooler/dense/...``)
with the same shapes as Keras' layers, so each is assigned to its TF2 twin. Pre-training
heads (``cls/...``), optimizer slots (``.../adam_m``, ``.../adam_v``) and ``global_step``
are skipped; anything else unexpected, any encoder variable left unassigned, and any
shape mismatch is an error that lists the names.
"""

import logging
import re

import tensorflow as tf

from laco_tf.errors import InputError

_SKIPPED = re.compile(r"^(cls/|global_step$)|/adam_[mv]$|^bad_steps$|^good_steps$|^loss_scale$")
_EMBEDDING_SUFFIX = {"word_embeddings/weight": "word_embeddings",
                     "token_type_embeddings/embeddings": "token_type_embeddings",
                     "position_embeddings/embeddings": "position_embeddings"}


def tf1_name(variable_name: str) -> str:
  """`TFBertModel` variable name -> the Google release's name for it."""
  name = variable_name.split(":")[0]
  name = name[name.index("bert/"):]  # Drop the Keras model's own name scope.
  for ours, theirs in _EMBEDDING_SUFFIX.items():
    if name.endswith(ours):
      name = name[:-len(ours)] + theirs
  return re.sub(r"/layer_\._(\d+)/", r"/layer_\1/", name)


def load_tf1_checkpoint(bert, checkpoint_path: str) -> None:
  """Assigns every encoder variable of `bert` from the TF1 checkpoint."""
  try:
    reader = tf.train.load_checkpoint(checkpoint_path)
  except (tf.errors.NotFoundError, ValueError, tf.errors.DataLossError) as e:
    raise InputError(f"--init_checkpoint={checkpoint_path}: not a readable TF checkpoint "
                     f"({str(e).splitlines()[0]})") from None
  shapes = reader.get_variable_to_shape_map()
  skipped = sorted(n for n in shapes if _SKIPPED.search(n))
  logging.debug("Skipping %d pre-training/optimizer variables: %s", len(skipped), skipped)
  wanted = {tf1_name(v.name): v for v in bert.weights}
  missing = sorted(n for n in wanted if n not in shapes)
  unexpected = sorted(n for n in shapes if n not in wanted and not _SKIPPED.search(n))
  mismatched = sorted(f"{n} {shapes[n]} vs {v.shape.as_list()}" for n, v in wanted.items()
                      if n in shapes and list(shapes[n]) != v.shape.as_list())
  problems = [f"{what}: {', '.join(names)}" for what, names in (
      ("missing encoder variables", missing), ("unexpected variables", unexpected),
      ("shape mismatches (checkpoint vs config)", mismatched)) if names]
  if problems:
    raise InputError(f"--init_checkpoint={checkpoint_path} does not fit the BERT config: "
                     + "; ".join(problems))
  for name, variable in wanted.items():
    variable.assign(reader.get_tensor(name))
