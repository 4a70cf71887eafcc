"""A Hugging Face BERT directory (``config.json``, ``model.safetensors``) into a
`bert_encoder.BertEncoder`: `read_bert_config`, `load_huggingface_weights`.

A Hugging Face BERT directory holds PyTorch's parameter names, optionally under the
``bert.`` prefix of a model with heads (``BertForPreTraining``,
``BertForSequenceClassification``, ...): ``embeddings.word_embeddings.weight``,
``encoder.layer.N.attention.self.query.weight``, ``encoder.layer.N.output.LayerNorm.bias``,
... (older conversions name LayerNorm's ``gamma``/``beta``). PyTorch's ``nn.Linear``
stores its weight [out, in]; Keras' Dense kernel is [in, out], so it is transposed.
Files that transformers' TF classes saved are read too, untransposed: a safetensors file
with metadata ``format: tf`` (names like ``bert/encoder/layer_._N/attention/self/query/kernel``)
or, where a directory has no ``model.safetensors``, ``tf_model.h5`` (Keras' HDF5 weights,
the same names under the model's; read with h5py, which TensorFlow installs).
Skipped: the ``embeddings.position_ids`` buffer, the pooler and every head (the names
outside ``bert.`` when the encoder's are under it; ``cls.`` otherwise). Every encoder
variable is assigned exactly once; a missing, unexpected, repeated or misshapen name is
one `InputError` line naming the file. ``pytorch_model.bin`` is a pickle and is refused.
"""

import dataclasses
import json
import logging
import os
import re
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from laco_tf.errors import InputError
from laco_tf.modeling.bert_encoder import BertEncoder, BertEncoderConfig

WEIGHTS_FILE = "model.safetensors"
TF_WEIGHTS_FILE = "tf_model.h5"
_WORD_EMBEDDINGS = "embeddings.word_embeddings.weight"
_SKIPPED = re.compile(r"^(pooler\.|cls\.)|^embeddings\.position_ids$")
_SHOWN = 6  # names listed per kind of problem; the rest are counted


def read_bert_config(path: str, vocab_size: Optional[int] = None) -> BertEncoderConfig:
  """The encoder's config from a ``config.json``; `vocab_size` (at least the file's) makes
  room for label tokens appended after the vocabulary (`label_tokens.py`)."""
  try:
    with open(path, encoding="utf-8") as f:
      raw = json.load(f)
  except (OSError, ValueError) as e:
    raise InputError(f"{path}: not a readable BERT config ({type(e).__name__}: {e})") from None
  if not isinstance(raw, dict):
    raise InputError(f"{path}: not a BERT config (expected a JSON object)")
  if raw.get("position_embedding_type", "absolute") != "absolute":
    raise InputError(f"{path}: position_embedding_type {raw['position_embedding_type']!r} is "
                     "not supported (LACO-TF's BERT encoder has absolute positions only)")
  fields = dataclasses.fields(BertEncoderConfig)
  missing = [f.name for f in fields if f.default is dataclasses.MISSING and f.name not in raw]
  if missing:
    raise InputError(f"{path}: not a BERT config (missing {', '.join(missing)})")
  config = BertEncoderConfig(**{f.name: raw[f.name] for f in fields if f.name in raw})
  config.check(path)
  if vocab_size is not None:
    if vocab_size < config.vocab_size:
      raise InputError(f"{path}: vocab_size {vocab_size} is below the config's "
                       f"{config.vocab_size}")
    config = dataclasses.replace(config, vocab_size=int(vocab_size))
  return config


def huggingface_names(encoder: BertEncoder) -> Dict[str, Tuple[tf.Variable, bool]]:
  """Each encoder variable under its PyTorch name, with whether PyTorch's layout is the
  transpose of ours (Linear weights). Builds the encoder if needed."""
  encoder.create_variables()
  emb = encoder.embeddings
  names = {_WORD_EMBEDDINGS: (emb.word_embeddings, False),
           "embeddings.position_embeddings.weight": (emb.position_embeddings, False),
           "embeddings.token_type_embeddings.weight": (emb.token_type_embeddings, False)}
  norms = [("embeddings.LayerNorm", emb.layer_norm)]
  for i, block in enumerate(encoder.blocks):
    prefix = f"encoder.layer.{i}."
    for theirs, dense in (("attention.self.query", block.attention.query),
                          ("attention.self.key", block.attention.key),
                          ("attention.self.value", block.attention.value),
                          ("attention.output.dense", block.attention.output_dense),
                          ("intermediate.dense", block.intermediate.dense),
                          ("output.dense", block.output_dense)):
      names[prefix + theirs + ".weight"] = (dense.kernel, True)
      names[prefix + theirs + ".bias"] = (dense.bias, False)
    norms += [(prefix + "attention.output.LayerNorm", block.attention_layer_norm),
              (prefix + "output.LayerNorm", block.output_layer_norm)]
  for theirs, norm in norms:
    names[theirs + ".weight"] = (norm.gamma, False)
    names[theirs + ".bias"] = (norm.beta, False)
  covered = [id(v) for v, _ in names.values()]
  if len(set(covered)) != len(covered) or set(covered) != {id(v) for v in encoder.weights}:
    raise AssertionError(f"{encoder.name}: the name table does not cover each variable once")
  return names


def _from_tf_name(name: str) -> str:
  """transformers' TF name -> the PyTorch one: ``bert/encoder/layer_._0/output/dense/kernel``
  -> ``bert.encoder.layer.0.output.dense.weight``."""
  parts = name.split(":")[0].replace("layer_._", "layer/").split("/")
  renamed = {"kernel": "weight", "gamma": "weight", "beta": "bias", "embeddings": "weight"}
  parts[-1] = renamed.get(parts[-1], parts[-1])
  return ".".join(parts)


def _canonical(name: str) -> str:
  return re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight",
                re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", name))


def weights_file(model_dir: str) -> str:
  """``model.safetensors`` in `model_dir`, else its ``tf_model.h5`` (or `model_dir`
  itself, such a file)."""
  if model_dir.endswith((".safetensors", ".h5")) and os.path.isfile(model_dir):
    return model_dir
  for name in (WEIGHTS_FILE, TF_WEIGHTS_FILE):
    if os.path.isfile(os.path.join(model_dir, name)):
      return os.path.join(model_dir, name)
  if os.path.isfile(os.path.join(model_dir, "pytorch_model.bin")):
    raise InputError(f"{os.path.join(model_dir, 'pytorch_model.bin')}: a pickle (PyTorch's "
                     "torch.save format), which LACO-TF does not load; it needs "
                     f"{WEIGHTS_FILE} (where PyTorch is installed: transformers' "
                     "BertModel.from_pretrained(d).save_pretrained(d, safe_serialization=True))")
  raise InputError(f"{model_dir}: no {WEIGHTS_FILE} (a Hugging Face BERT directory holds "
                   f"config.json and {WEIGHTS_FILE})")


def _read_h5(path: str) -> Dict[str, np.ndarray]:
  """transformers' ``tf_model.h5``: {TF variable name from ``bert/`` on: value}; heads
  keep their own names (skipped later as outside ``bert.``)."""
  import h5py  # pylint: disable=import-outside-toplevel
  found = {}

  def visit(name, item):
    if isinstance(item, h5py.Dataset):
      found[re.sub(r"^.*?/(?=bert/(embeddings|encoder|pooler)/)", "", name)] = item[()]
  try:
    with h5py.File(path, "r") as f:
      f.visititems(visit)
  except OSError as e:
    raise InputError(f"{path}: not a readable HDF5 weights file ({e})") from None
  return found


def _read(path: str) -> Tuple[Dict[str, np.ndarray], bool]:
  """The file's tensors under canonical PyTorch names (``bert.`` kept), and whether they
  are in transformers' TF layout."""
  if path.endswith(".h5"):
    tensors, tf_layout = _read_h5(path), True
  else:
    tensors, tf_layout = _read_safetensors(path)
  out, repeated = {}, []
  for name, value in tensors.items():
    key = _canonical(_from_tf_name(name) if tf_layout else name)
    if key in out:
      repeated.append(name)
    out[key] = value
  if repeated:
    raise InputError(f"{path}: names repeated once canonical: {_listed(repeated)}")
  return out, tf_layout


def _read_safetensors(path: str) -> Tuple[Dict[str, np.ndarray], bool]:
  import safetensors  # pylint: disable=import-outside-toplevel
  from safetensors.numpy import load_file  # pylint: disable=import-outside-toplevel
  try:
    with safetensors.safe_open(path, framework="numpy") as f:
      tf_layout = (f.metadata() or {}).get("format") == "tf"
    return load_file(path), tf_layout
  except (OSError, ValueError, TypeError, safetensors.SafetensorError) as e:
    raise InputError(f"{path}: not a readable safetensors file ({type(e).__name__}: "
                     f"{str(e).splitlines()[0] if str(e) else ''})") from None


def _listed(names) -> str:
  names = sorted(names)
  more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
  return ", ".join(names[:_SHOWN]) + more


def _encoder_tensors(tensors: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], int]:
  """The encoder's tensors without the ``bert.`` prefix, and how many were skipped."""
  prefixed = any(n.startswith("bert.") for n in tensors)
  out = {}
  for name, value in tensors.items():
    if prefixed and not name.startswith("bert."):
      continue  # A head of a model with heads.
    key = name[len("bert."):] if prefixed else name
    if not _SKIPPED.search(key):
      out[key] = value
  return out, len(tensors) - len(out)


def _shape_problem(name: str, value: np.ndarray, variable: tf.Variable,
                   transpose: bool) -> Optional[str]:
  shape = list(value.shape[::-1] if transpose else value.shape)
  want = variable.shape.as_list()
  if shape == want or (name == _WORD_EMBEDDINGS and len(shape) == 2 and
                       shape[1] == want[1] and shape[0] <= want[0]):
    return None  # Word-embedding rows beyond the file's: label tokens (label_tokens.py).
  return f"{name} {shape} vs {want}"


def load_huggingface_weights(encoder: BertEncoder, model_dir: str) -> None:
  """Assigns every variable of `encoder` from `model_dir`'s ``model.safetensors`` (or
  transformers' ``tf_model.h5`` where there is none).

  The encoder may have more word-embedding rows than the file (label tokens appended
  after the vocabulary); those rows keep their values. Anything else that does not fit
  is one `InputError` line naming the file."""
  path = weights_file(model_dir)
  tensors, tf_layout = _read(path)
  found, skipped = _encoder_tensors(tensors)
  wanted = huggingface_names(encoder)
  transposed = {n: t and not tf_layout for n, (_, t) in wanted.items()}
  missing = [n for n in wanted if n not in found]
  unexpected = [n for n in found if n not in wanted]
  mismatched = [p for p in (_shape_problem(n, found[n], v, transposed[n])
                            for n, (v, _) in wanted.items() if n in found) if p]
  problems = [f"{what}: {_listed(names)}" for what, names in (
      ("missing encoder weights", missing), ("unexpected weights", unexpected),
      ("shape mismatches (file vs encoder)", mismatched)) if names]
  if problems:
    raise InputError(f"{path}: does not fit the BERT encoder ({'; '.join(problems)})")
  logging.debug("%s: skipped %d pooler/head/buffer tensors", path, skipped)
  for name, (variable, _) in wanted.items():
    value = found[name].T if transposed[name] else found[name]
    value = value.astype(variable.dtype.as_numpy_dtype)
    if value.shape[0] < variable.shape[0]:  # Only the word embeddings (checked above).
      value = np.concatenate([value, variable.numpy()[value.shape[0]:]], axis=0)
    variable.assign(value)


def load_huggingface_encoder(model_dir: str, vocab_size: Optional[int] = None,
                             **kwargs) -> BertEncoder:
  """A `BertEncoder` from `model_dir`'s ``config.json`` and ``model.safetensors`` (or
  ``tf_model.h5``);
  `vocab_size` as `read_bert_config`'s, `kwargs` as `BertEncoder`'s."""
  config = read_bert_config(os.path.join(model_dir, "config.json"), vocab_size)
  encoder = BertEncoder(config, **{"name": "bert_encoder", **kwargs})
  load_huggingface_weights(encoder, model_dir)
  return encoder


def save_huggingface(encoder: BertEncoder, directory: str) -> str:
  """Writes `encoder` as a Hugging Face BERT directory (``config.json`` and
  ``model.safetensors`` in PyTorch's names and layouts, which transformers' ``BertModel``
  and `load_huggingface_encoder` read). Returns `directory`."""
  from safetensors.numpy import save_file  # pylint: disable=import-outside-toplevel
  os.makedirs(directory, exist_ok=True)
  tensors = {name: np.ascontiguousarray(v.numpy().T if transpose else v.numpy())
             for name, (v, transpose) in huggingface_names(encoder).items()}
  save_file(tensors, os.path.join(directory, WEIGHTS_FILE), metadata={"format": "pt"})
  config = {"model_type": "bert", "architectures": ["BertModel"],
            **dataclasses.asdict(encoder.config)}
  with open(os.path.join(directory, "config.json"), "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
  return directory
