"""BERT's exact GELU, fast: the same function and gradient as tf_keras' exact gelu after a
Dense (transformers' TFBertIntermediate, the layer it replaced)."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import ndtr

from laco_tf.modeling import gelu
from laco_tf.modeling.bert_encoder import BertEncoder, BertEncoderConfig
from laco_tf.modeling.gelu import GeluIntermediate, exact_gelu, exact_gelu_op_by_op
from tests.conftest import tiny_vocab, write_tiny_bert

# Both tails, zero, and the bulk where BERT's pre-activations live.
X = np.concatenate([np.linspace(-12.0, 12.0, 2401), [-40.0, -1e-4, 0.0, 1e-4, 40.0]])


def _stock_gelu():
  """tf_keras' exact gelu (what transformers' TF "gelu" activation is)."""
  import tf_keras
  return lambda x: tf_keras.activations.gelu(x, approximate=False)


def _value_and_grad(fn, x):
  x = tf.constant(x)
  with tf.GradientTape() as tape:
    tape.watch(x)
    y = fn(x)
  return y.numpy(), tape.gradient(y, x, output_gradients=tf.ones_like(y)).numpy()


@pytest.mark.parametrize("fn", [exact_gelu, exact_gelu_op_by_op], ids=["xla", "op_by_op"])
def test_float32_value_and_gradient_match_the_float64_formula_and_tf_keras_gelu(fn):
  x32 = X.astype(np.float32)
  x64 = x32.astype(np.float64)
  value, grad = _value_and_grad(fn, x32)
  pdf = np.exp(-0.5 * x64 ** 2) / np.sqrt(2 * np.pi)
  assert value.dtype == grad.dtype == np.float32
  np.testing.assert_allclose(value, x64 * ndtr(x64), rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(grad, ndtr(x64) + x64 * pdf, rtol=1e-6, atol=1e-6)
  stock_value, stock_grad = _value_and_grad(_stock_gelu(), x32)
  np.testing.assert_allclose(value, stock_value, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(grad, stock_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fn,share", [(exact_gelu, 0.99), (exact_gelu_op_by_op, 0.97)],
                         ids=["xla", "op_by_op"])
def test_bfloat16_output_is_the_exact_value_rounded_once(fn, share):
  xb = tf.cast(tf.constant(X, tf.float32), tf.bfloat16)
  x64 = tf.cast(xb, tf.float64).numpy()
  value, grad = _value_and_grad(fn, xb)
  assert value.dtype == grad.dtype == tf.bfloat16.as_numpy_dtype
  exact = tf.cast(tf.constant(x64 * ndtr(x64), tf.float32), tf.bfloat16).numpy()
  # float32 arithmetic can land a hair either side of a bfloat16 rounding boundary: then
  # the neighbour, one bfloat16 step (2**-7 relative at most) away.
  np.testing.assert_allclose(value.astype(np.float64), exact.astype(np.float64),
                             rtol=2 ** -7, atol=1e-6)
  # Where GELU is at least 1e-5, nearly all values are the exact one rounded once (all of
  # them here through XLA's erfc; 97.7% through TensorFlow's erf, where 1 + erf cancels).
  bulk = np.abs(exact.astype(np.float64)) >= 1e-5
  assert bulk.sum() > 1500 and np.mean(value[bulk] == exact[bulk]) > share


TINY = BertEncoderConfig(vocab_size=50, hidden_size=8, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=16)


class _StockIntermediate:
  """transformers' TFBertIntermediate: a Dense, then tf_keras' gelu in the compute type."""

  def __init__(self, dense):
    self.dense = dense

  def __call__(self, hidden_states):
    return _stock_gelu()(self.dense(hidden_states))


def _float64_gradients(x, dense):
  """d/d[x, kernel] of sum(y cos y), y = GELU(x W + b), all in float64 from the bfloat16
  values the layers compute with."""
  def rounded(t):
    return tf.cast(tf.cast(t, tf.bfloat16), tf.float64)
  x64, w64, b64 = rounded(x), rounded(dense.kernel), rounded(dense.bias)
  with tf.GradientTape() as tape:
    tape.watch([x64, w64])
    pre = tf.einsum("btd,dk->btk", x64, w64) + b64
    y = pre * 0.5 * (1.0 + tf.math.erf(pre / np.sqrt(2.0)))
    loss = tf.reduce_sum(y * tf.cos(y))
  return [g.numpy() for g in tape.gradient(loss, [x64, w64])]


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_training_and_inference_paths_compute_the_stock_layer_and_its_gradient(policy):
  import tf_keras
  tf_keras.mixed_precision.set_global_policy(policy)
  try:
    stock = _StockIntermediate(tf_keras.layers.Dense(  # BERT's initializer_range
        64, kernel_initializer=tf_keras.initializers.TruncatedNormal(stddev=0.02, seed=7),
        bias_initializer=tf_keras.initializers.RandomNormal(stddev=0.02, seed=8), name="dense"))
    x = tf.random.stateless_normal([3, 7, 16], [1, 2]) * 3
    stock(hidden_states=x)
    ours = GeluIntermediate(stock.dense, 16, name="intermediate")

    def value_and_grad(layer, **kw):
      @tf.function  # graph mode: where TensorFlow's optimiser fuses the inference path
      def f():
        with tf.GradientTape() as tape:
          tape.watch(x)
          y = tf.cast(layer(hidden_states=x, **kw), tf.float32)
          loss = tf.reduce_sum(y * tf.cos(y))
        return y, tape.gradient(loss, [x, stock.dense.kernel])
      return f()
    y0, g0 = value_and_grad(stock)
    y_train, g_train = value_and_grad(ours, training=True)
    y_infer = tf.function(lambda: tf.cast(ours(hidden_states=x), tf.float32))()
    assert y_infer.shape == y0.shape == (3, 7, 64)
    # float32: equal to rounding; bfloat16: within a step or two of bfloat16 (2**-7 relative),
    # since the stock layer rounds after every op and these paths round once.
    tol = dict(rtol=1e-5, atol=1e-5) if policy == "float32" else dict(rtol=2 ** -6, atol=2 ** -6)
    np.testing.assert_allclose(y_train.numpy(), y0.numpy(), **tol)
    np.testing.assert_allclose(y_infer.numpy(), y0.numpy(), **tol)
    if policy == "float32":
      for a, b in zip(g_train, g0):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-4)
    else:
      # bfloat16 gradients carry rounding of every op; ours rounds fewer times. Against the
      # float64 gradient of the same (bfloat16-rounded) inputs and weights, ours is no
      # further off than the stock layer on average, and its worst element within 10% of
      # the stock layer's (a single element's rounding decides the worst: weights seeded).
      for a, b, want in zip(g_train, g0, _float64_gradients(x, stock.dense)):
        ours_off = np.abs(tf.cast(a, tf.float64).numpy() - want)
        stock_off = np.abs(tf.cast(b, tf.float64).numpy() - want)
        assert ours_off.mean() <= stock_off.mean() and ours_off.max() <= 1.1 * stock_off.max()
  finally:
    tf_keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("compiled", [True, False])
def test_training_calls_run_the_chosen_gelu_and_inference_calls_do_not(monkeypatch, compiled):
  bert = BertEncoder(TINY, compiled=compiled)
  calls = []
  monkeypatch.setattr(gelu, "exact_gelu", lambda x: calls.append("xla") or x)
  monkeypatch.setattr(gelu, "exact_gelu_op_by_op", lambda x: calls.append("op_by_op") or x)
  ids = tf.constant([[2, 30, 31, 3]])
  for training, expected in ((True, 2), (False, 0), (None, 0)):
    calls.clear()
    kwargs = {} if training is None else {"training": training}
    bert(input_ids=ids, **kwargs)
    assert calls == ["xla" if compiled else "op_by_op"] * expected, training


@pytest.mark.parametrize("compiled", [True, False])
def test_the_laco_model_keeps_its_encoders_gelu_and_compiles_every_dropout_alike(compiled):
  from laco_tf.modeling.layers.stateless_dropout import StatelessDropout
  from laco_tf.modeling.model import LacoModel
  bert = BertEncoder(TINY, compiled=compiled)
  model = LacoModel(bert, num_labels=3, compiled_chains=compiled)
  assert all(isinstance(b.intermediate, GeluIntermediate) for b in bert.blocks)
  assert [b.intermediate.compiled for b in bert.blocks] == [compiled] * len(bert.blocks)
  dropouts = [l for l in model.submodules if isinstance(l, StatelessDropout)]
  assert len(dropouts) > 3 * len(bert.blocks)
  assert {d.compiled for d in dropouts} == {compiled}
  # One seed for all, and no two dropouts share a salt (their masks would coincide).
  assert {d.seed_source for d in dropouts} == {model.dropout_seed}
  assert len({d.salt for d in dropouts}) == len(dropouts)


def test_the_compiled_chains_equal_the_same_formulas_run_op_by_op():
  # XLA compiles gelu_forward / gelu_backward into one loop each; its erfc and exp are
  # its own approximations, so the compiled values may differ from TensorFlow's kernels
  # only by float32 rounding.
  x = tf.constant(X.astype(np.float32))
  dy = tf.random.stateless_normal(x.shape, [4, 2])
  assert "fusion" in gelu.gelu_forward_xla.experimental_get_compiler_ir(x)(
      stage="optimized_hlo")
  # TensorFlow's erf form loses GELU below 1e-6 far below zero, where 1 + erf cancels.
  for cdf, atol in ((gelu.cdf_by_erfc, 1e-7), (gelu.cdf_by_erf, 1e-6)):
    np.testing.assert_allclose(gelu.gelu_forward_xla(x).numpy(),
                               gelu.gelu_forward(x, cdf).numpy(), rtol=2e-6, atol=atol)
    np.testing.assert_allclose(gelu.gelu_backward_xla(x, dy).numpy(),
                               gelu.gelu_backward(x, dy, cdf).numpy(), rtol=2e-6, atol=atol)


@pytest.mark.parametrize("bucketing,jit,compiled",
                         [(True, False, True), (False, False, False), (False, True, True)])
def test_runs_compile_the_chains_only_where_batch_lengths_are_few(tmp_path, bucketing, jit,
                                                                  compiled):
  # XLA compiles once per input shape: bucketed lengths (or --jit_compile's padding) keep
  # the shapes few; whole batches of arbitrary length keep TensorFlow's kernels.
  from laco_tf.modeling import build
  from laco_tf.data import tokenization
  from laco_tf.modeling import encoder, label_tokens
  from laco_tf.modeling.layers.stateless_dropout import StatelessDropout
  from tests.test_end_to_end import tiny_options
  bert_dir = write_tiny_bert(tmp_path, tiny_vocab())
  opts = tiny_options("-", bert_dir, tmp_path / "out", length_bucketing=bucketing,
                      jit_compile=jit)
  spec = encoder.resolve_encoder(bert_dir)
  labels = ["a", "b", "c"]
  plan = label_tokens.plan_label_tokens(tokenization.read_vocab(spec.vocab_file),
                                        spec.vocab_size, len(labels), opts.joint_embedding)
  model = build.build_model(spec, labels, plan, None, opts, tf.distribute.get_strategy())
  layers = model.bert.blocks
  assert [l.intermediate.compiled for l in layers] == [compiled] * len(layers)
  assert {l.compiled for l in model.submodules if isinstance(l, StatelessDropout)} == {compiled}
