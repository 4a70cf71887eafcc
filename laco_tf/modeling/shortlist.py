"""A first-stage label shortlist for label slots (our extension; the paper has no first
stage).

With ``--label_slots=K`` a sequence carries K of the n labels. This module proposes which:
a TF-IDF centroid classifier (Rocchio) over the document's wordpieces. Each training
document is a TF-IDF vector x_d (sublinear term frequency 1 + log c, smoothed idf
log((1 + N) / (1 + df)) + 1, wordpieces unseen in training dropped, L2-normalised, as
scikit-learn's TfidfVectorizer with ``sublinear_tf=True``); each label's centroid is the L2-normalised sum of its documents'
vectors; a document's score for a label is the cosine x . c_label. It is fitted in one
pass over the training TFRecords (the same wordpieces the encoder reads), has no
hyper-parameter, and scores every label for the price of one sparse product, so it
runs inside the graph: in dev evaluation, prediction and the SavedModel.

Used for ``--label_inference=shortlist`` (LACO scores the top K labels, the others get
probability 0) and ``--slot_negatives=shortlist`` (training sequences fill their free
slots with the highest-scoring wrong labels, as inference will carry them).
"""

import dataclasses

import numpy as np
from scipy import sparse
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class ShortlistWeights:
  """idf [V] float32; the centroids as a sparse [n, V] matrix in label-major order:
  indices [nnz, 2] int64 (label, wordpiece) and values [nnz] float32."""
  idf: np.ndarray
  indices: np.ndarray
  values: np.ndarray
  num_labels: int


def _tfidf_matrix(docs, idf: np.ndarray) -> sparse.csr_matrix:
  """[len(docs), V] L2-normalised TF-IDF rows of the documents' wordpieces."""
  terms, weights, offsets = [], [], [0]
  for ids in docs:
    t, counts = np.unique(np.asarray(ids, np.int64), return_counts=True)
    w = (1.0 + np.log(counts)) * idf[t]
    norm = np.sqrt(np.sum(w ** 2))
    terms.append(t)
    weights.append(w / norm if norm > 0 else w)
    offsets.append(offsets[-1] + len(t))
  return sparse.csr_matrix((np.concatenate(weights + [np.zeros(0)]),
                            np.concatenate(terms + [np.zeros(0, np.int64)]), offsets),
                           shape=(len(docs), len(idf)))


def fit(docs, doc_labels, vocab_size: int, num_labels: int) -> ShortlistWeights:
  """Fits the centroids on training documents.

  Args:
    docs: per document, its wordpiece ids (the text's, without special tokens).
    doc_labels: per document, its label indices.
  """
  df = np.zeros(vocab_size, np.float64)
  for ids in docs:
    df[np.unique(np.asarray(ids, np.int64))] += 1
  # Wordpieces never seen in training weigh nothing (scikit-learn drops them too).
  idf = np.where(df > 0, np.log((1.0 + len(docs)) / (1.0 + df)) + 1.0, 0.0)
  x = _tfidf_matrix(docs, idf)
  y = sparse.csr_matrix(
      (np.ones(sum(len(l) for l in doc_labels)),
       np.concatenate([np.asarray(l, np.int64) for l in doc_labels] + [np.zeros(0, np.int64)]),
       np.cumsum([0] + [len(l) for l in doc_labels])), shape=(len(docs), num_labels))
  centroids = (y.T @ x).tocsr()
  norms = np.sqrt(np.asarray(centroids.multiply(centroids).sum(axis=1)).ravel())
  centroids = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ centroids
  coo = centroids.tocoo()
  order = np.lexsort((coo.col, coo.row))        # label-major, then wordpiece
  indices = np.stack([coo.row[order], coo.col[order]], axis=1).astype(np.int64)
  return ShortlistWeights(idf.astype(np.float32), indices.reshape(-1, 2),
                          coo.data[order].astype(np.float32), num_labels)


def top_candidates(weights: ShortlistWeights, docs, k: int,
                   batch: int = 1024) -> np.ndarray:
  """[len(docs), k] int32: each document's k best-scoring labels, best first (the
  training documents' hard negatives come from these)."""
  centroids = sparse.csr_matrix(
      (weights.values, (weights.indices[:, 0], weights.indices[:, 1])),
      shape=(weights.num_labels, len(weights.idf))).T.tocsr()
  out = np.zeros([len(docs), k], np.int32)
  for start in range(0, len(docs), batch):
    scores = (_tfidf_matrix(docs[start:start + batch], weights.idf.astype(np.float64)) @
              centroids).toarray()
    # Highest score first, ties by label index (stable sort of the negated scores).
    out[start:start + batch] = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return out


def recall_at(scores: np.ndarray, gold: np.ndarray, k: int) -> float:
  """Micro recall of the top-k lists: gold labels inside them / all gold labels."""
  if not gold.any():
    return float("nan")
  top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  return float(np.take_along_axis(gold.astype(bool), top, axis=1).sum() / gold.sum())


class LabelShortlist(tf.Module):
  """The fitted centroids as (non-trainable) variables, scored in the graph.

  Call: [batch, L] int `input_ids` of ``[CLS] x [SEP] ...`` and [batch] `doc_length`
  -> [batch, n] float32 scores (the document's wordpieces are positions 1..doc_length).
  """

  def __init__(self, weights: ShortlistWeights, name: str = "label_shortlist"):
    super().__init__(name=name)
    self.num_labels = weights.num_labels
    self.vocab_size = len(weights.idf)
    self.idf = tf.Variable(weights.idf, trainable=False, name="idf")
    self.indices = tf.Variable(weights.indices, trainable=False, name="centroid_indices")
    self.values = tf.Variable(weights.values, trainable=False, name="centroid_values")

  def __call__(self, input_ids, doc_length):
    ids = tf.cast(input_ids, tf.int32)
    batch, length = tf.shape(ids)[0], tf.shape(ids)[1]
    position = tf.range(length)[tf.newaxis, :]
    in_doc = (position >= 1) & (position <= tf.cast(doc_length, tf.int32)[:, tf.newaxis])
    ids = tf.where(in_doc, ids, 0)  # other positions may hold ids past the vocabulary
    rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis], tf.shape(ids))
    counts = tf.math.unsorted_segment_sum(
        tf.reshape(tf.cast(in_doc, tf.float32), [-1]),
        tf.reshape(rows * self.vocab_size + ids, [-1]), batch * self.vocab_size)
    counts = tf.reshape(counts, [batch, self.vocab_size])
    tf_weight = tf.where(counts > 0, 1.0 + tf.math.log(tf.maximum(counts, 1.0)), 0.0)
    x = tf.math.l2_normalize(tf_weight * self.idf[tf.newaxis, :], axis=1)
    centroids = tf.SparseTensor(self.indices, self.values,
                                [self.num_labels, self.vocab_size])
    return tf.transpose(tf.sparse.sparse_dense_matmul(centroids, x, adjoint_b=True))


  def scores_of(self, docs, batch: int = 256) -> np.ndarray:
    """[len(docs), n] scores of documents given as wordpiece id lists (no special
    tokens), through the graph's computation."""
    out = [np.zeros([0, self.num_labels], np.float32)]
    for start in range(0, len(docs), batch):
      chunk = docs[start:start + batch]
      ids = np.zeros([len(chunk), max(len(d) for d in chunk) + 2], np.int64)
      for i, d in enumerate(chunk):
        ids[i, 1:1 + len(d)] = d
      out.append(self(tf.constant(ids), tf.constant([len(d) for d in chunk])).numpy())
    return np.concatenate(out)


def top_labels(scores, k: int):
  """[batch, k] int32 indices of the k best labels, ascending (the slot order)."""
  _, best = tf.math.top_k(scores, k=k)
  return tf.sort(tf.cast(best, tf.int32), axis=-1)
