"""BERT's encoder settings: the fields of a Hugging Face ``config.json`` (or Google's
``bert_config.json``) that `bert_encoder.BertEncoder` is built from, and their checks."""

import dataclasses
from typing import Union

from laco_tf.errors import InputError

_POSITIVE_INTS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "max_position_embeddings", "type_vocab_size")


@dataclasses.dataclass(frozen=True)
class BertEncoderConfig:
  """The fields of a Hugging Face ``config.json`` (or Google's ``bert_config.json``) that
  define BERT's encoder; defaults are BERT-base's."""
  vocab_size: int
  hidden_size: int
  num_hidden_layers: int
  num_attention_heads: int
  intermediate_size: int
  hidden_act: str = "gelu"
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  initializer_range: float = 0.02

  def check(self, where: str) -> "BertEncoderConfig":
    """Itself, or one `InputError` line naming `where` and what is wrong."""
    if self.hidden_act != "gelu":
      raise InputError(f"{where}: hidden_act {self.hidden_act!r} is not supported; LACO-TF's "
                       "BERT encoder computes BERT's exact GELU (hidden_act \"gelu\") only")
    bad = [f"{n}={getattr(self, n)!r}" for n in _POSITIVE_INTS if isinstance(
        getattr(self, n), bool) or not isinstance(getattr(self, n), int) or getattr(self, n) < 1]
    bad += [f"{n}={getattr(self, n)!r}" for n in ("hidden_dropout_prob",
                                                   "attention_probs_dropout_prob")
            if not isinstance(getattr(self, n), (int, float)) or not 0 <= getattr(self, n) < 1]
    bad += [f"{n}={getattr(self, n)!r}" for n in ("layer_norm_eps", "initializer_range")
            if not isinstance(getattr(self, n), (int, float)) or not getattr(self, n) > 0]
    if not bad and self.hidden_size % self.num_attention_heads:
      bad.append(f"hidden_size={self.hidden_size} not a multiple of num_attention_heads="
                 f"{self.num_attention_heads}")
    if bad:
      raise InputError(f"{where}: not a usable BERT config ({'; '.join(bad)})")
    return self


def as_config(config: Union[BertEncoderConfig, dict]) -> BertEncoderConfig:
  return config if isinstance(config, BertEncoderConfig) else BertEncoderConfig(**config)
