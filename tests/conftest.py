"""Shared test fixtures: two logical CPU devices, a tiny random BERT, tiny corpora.

The CPU is split into two logical devices before TensorFlow starts, so that tests can
train under a real MirroredStrategy; every other test runs on the default strategy.
"""

import importlib.util
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


def _load_sample_generator():
  spec = importlib.util.spec_from_file_location("make_sample",
                                                os.path.join(ROOT, "data", "make_sample.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


make_sample = _load_sample_generator()
NUM_UNUSED = 20


def tiny_vocab():
  words = sorted({w for ws in make_sample.VOCAB.values() for w in ws.split()} |
                 set(make_sample.FILLER))
  tokens = (["[PAD]"] + [f"[unused{i}]" for i in range(NUM_UNUSED)] +
            ["[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?", "-", "'", "##s", "##ed"] +
            [chr(c) for c in range(ord("a"), ord("z") + 1)] + words)
  return list(dict.fromkeys(tokens))


def write_tiny_bert(path, vocab, dropout=0.0):
  """A randomly initialised 2-layer BERT (hidden 32) saved as a Hugging Face directory
  (config.json, model.safetensors, vocab.txt)."""
  import tf_keras
  from laco_tf.modeling import bert_weights
  from laco_tf.modeling.bert_encoder import BertEncoder, BertEncoderConfig
  config = BertEncoderConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=64,
                             max_position_embeddings=128, hidden_dropout_prob=dropout,
                             attention_probs_dropout_prob=dropout)
  tf_keras.utils.set_random_seed(0)
  bert_weights.save_huggingface(BertEncoder(config), str(path))
  with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
    f.writelines(f"{t}\n" for t in vocab)
  return str(path)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
  return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"), tiny_vocab())


def write_jsonl_corpus(directory, sizes, seed=0, labels=None):
  """Writes {split}.jsonl from the sample generator; `labels` keeps only those labels."""
  import random
  rng = random.Random(seed)
  os.makedirs(directory, exist_ok=True)
  for split, size in sizes.items():
    with open(os.path.join(directory, f"{split}.jsonl"), "w", encoding="utf-8") as f:
      written = 0
      while written < size:
        text, doc_labels = make_sample.make_document(rng)
        if labels is not None:
          doc_labels = [l for l in doc_labels if l in labels]
          if not doc_labels:
            continue
        f.write(json.dumps({"id": f"{split}-{written}", "text": text,
                            "labels": doc_labels}) + "\n")
        written += 1
  return str(directory)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
  """Four frequent labels, 96 train / 32 dev / 32 test documents."""
  return write_jsonl_corpus(tmp_path_factory.mktemp("corpus"),
                            {"train": 96, "dev": 32, "test": 32}, seed=1,
                            labels={"markets", "rates", "energy", "sports"})
