"""A run's options checked: each value, their combinations, and the lengths they resolve to
(the guard against mixing runs in one directory is `run_dir.claim_output_dir`)."""

import dataclasses
import math
import os

from laco_tf import options, preflight, run_dir
from laco_tf.data import input_packing, readers
from laco_tf.training import thresholds
from laco_tf.errors import InputError

RUN_CONFIG = run_dir.RUN_CONFIG
# The text budget when neither --max_seq_length nor --max_doc_tokens is given: the
# protocol that wins on held-out Reuters stories (BENCHMARKS.md).
DEFAULT_DOC_TOKENS = 256
RunOptions = options.RunOptions


# Where the run reads and writes, and which phases it runs: not hyperparameters.
_NOT_HPARAMS = ("data_dir", "output_dir", "export_dir")


def hparams(opts: RunOptions) -> dict:
  """The run's settings as TensorBoard's HParams dashboard shows them."""
  return {k: v for k, v in dataclasses.asdict(opts).items()
          if k not in _NOT_HPARAMS and not k.startswith("do_")}


def hparam_types() -> dict:
  """name -> bool, int, float or str of each of `hparams`' settings."""
  kinds = options.types()
  return {name: kinds[name] for name in hparams(RunOptions())}


def validate(opts: RunOptions) -> RunOptions:
  """Checks every flag's range; fills the do_* default (all four when none is given)."""
  preflight.check_required(opts.data_dir, opts.output_dir)
  _check_values(opts)
  _check_combinations(opts)
  if not (opts.do_train or opts.do_eval or opts.do_predict or opts.do_export):
    opts = dataclasses.replace(opts, do_train=True, do_eval=True, do_predict=True,
                               do_export=True)
  check_export_dir(opts)
  check_checkpoint_path(opts.output_dir)
  return opts


def _check_values(opts: RunOptions) -> None:
  """Each option's value on its own: finite, in range, one of its choices."""
  checks = [
      ("max_seq_length", opts.max_seq_length is None or opts.max_seq_length > 0,
       "a positive integer, or unset"),
      ("max_doc_tokens", opts.max_doc_tokens is None or
       opts.max_doc_tokens >= input_packing.MIN_DOC_TOKENS,
       f"an integer >= {input_packing.MIN_DOC_TOKENS}, or unset"),
      ("test_fraction", opts.test_fraction is None or 0 <= opts.test_fraction < 1,
       "a number in [0, 1), or unset"),
      ("label_slots", opts.label_slots >= 0, "0 (every label) or a positive integer"),
      ("label_join_layer", opts.label_join_layer >= 0,
       "0 (labels in every layer) or a positive layer index"),
      ("train_batch_size", opts.train_batch_size > 0, "a positive integer"),
      ("eval_batch_size", opts.eval_batch_size > 0, "a positive integer"),
      ("learning_rate", opts.learning_rate > 0, "a positive number"),
      ("head_learning_rate", opts.head_learning_rate > 0, "a positive number"),
      ("warmup_proportion", 0 <= opts.warmup_proportion < 1, "a number in [0, 1)"),
      ("weight_decay", opts.weight_decay >= 0, "a number >= 0"),
      ("layer_decay", 0 < opts.layer_decay <= 1, "a number in (0, 1]"),
      ("ema_decay", 0 <= opts.ema_decay < 1, "0 (off) or a number in (0, 1)"),
      ("num_train_epochs", opts.num_train_epochs > 0 or opts.max_steps > 0,
       "a positive number (or set --max_steps)"),
      ("max_steps", opts.max_steps >= 0, "0 or a positive integer"),
      ("steps_per_loop", opts.steps_per_loop > 0, "a positive integer"),
      ("microbatch_size", opts.microbatch_size >= 0,
       "0 (each batch whole) or a positive number of documents"),
      ("serving_chunk_size", opts.serving_chunk_size >= 0,
       "0 (the whole request at once) or a positive number of texts"),
      ("seed", 0 <= opts.seed < 2**31, "an integer in [0, 2^31)"),
      ("dev_split_seed", opts.dev_split_seed is None or 0 <= opts.dev_split_seed < 2**31,
       "an integer in [0, 2^31), or unset (= --seed)"),
      ("window_size", opts.window_size > 0, "a positive integer"),
      ("dropout_rate", 0 <= opts.dropout_rate < 1, "a number in [0, 1)"),
      ("gamma", opts.gamma > 0, "a positive number"),
      ("plcp_pairs_per_doc", opts.plcp_pairs_per_doc > 0, "a positive integer"),
      ("clcp_given", opts.clcp_given > 0, "a positive integer"),
      ("alpha", 0 < opts.alpha < 1, "a number in (0, 1) (eq. 7)"),
      ("eval_every_steps", opts.eval_every_steps >= 0, "0 or a positive integer"),
      ("save_checkpoints_steps", opts.save_checkpoints_steps >= 0, "0 or a positive integer"),
      ("early_stopping_patience", opts.early_stopping_patience >= 0,
       "0 (never stop early) or a positive integer"),
      ("threshold", thresholds.valid_threshold(opts.threshold), thresholds.THRESHOLD_RANGE),
  ]
  for field in dataclasses.fields(opts):
    value = getattr(opts, field.name)
    if isinstance(value, float) and not math.isfinite(value):
      raise InputError(f"--{field.name}={value}: expected a finite number")
  readers.check_encoding(opts.encoding)
  checks += [(o.name, getattr(opts, o.name) in o.choices or
              (o.default is None and getattr(opts, o.name) is None),
              "one of " + ", ".join(o.choices) + (", or unset" if o.default is None else ""))
             for o in options.OPTIONS if o.choices]
  for name, ok, expected in checks:
    if not ok:
      raise InputError(f"--{name}={getattr(opts, name)}: expected {expected}")


def _check_combinations(opts: RunOptions) -> None:
  """Options that do not go together, or one that only another uses."""
  if opts.max_seq_length is not None and opts.max_doc_tokens is not None:
    raise InputError(f"--max_seq_length={opts.max_seq_length}, --max_doc_tokens="
                     f"{opts.max_doc_tokens}: expected one of the two (the total length, or "
                     "the text budget beside the label tokens)")
  if opts.microbatch_size and opts.jit_compile:
    raise InputError(f"--microbatch_size={opts.microbatch_size}: not with --jit_compile "
                     "(XLA would compile every micro-batch length); use one or the other")
  if not opts.joint_embedding and not opts.cross_attention and opts.task != "mltc":
    raise InputError(f"--task={opts.task}: the BERT baseline (--nojoint_embedding "
                     "--nocross_attention) has no label states for PLCP/CLCP; use --task=mltc")
  if opts.pooling and opts.cross_attention:
    raise InputError(f"--pooling={opts.pooling}: only used with --nocross_attention (CA builds "
                     "the document vector otherwise)")
  if opts.label_init == "name" and not opts.joint_embedding:
    raise InputError("--label_init=name: there are no label tokens without joint embedding "
                     "(--nojoint_embedding)")
  if opts.label_slots and not opts.joint_embedding:
    raise InputError(f"--label_slots={opts.label_slots}: label slots hold label tokens, "
                     "which only joint embedding has (drop --nojoint_embedding)")
  if opts.label_join_layer and not opts.joint_embedding:
    raise InputError(f"--label_join_layer={opts.label_join_layer}: there are no label "
                     "tokens to join without joint embedding (drop --nojoint_embedding)")
  for name, default in (("slot_negatives", "uniform"), ("label_inference", "exhaustive")):
    if getattr(opts, name) != default and not opts.label_slots:
      raise InputError(f"--{name}={getattr(opts, name)}: only used with --label_slots")
  if opts.label_slots and opts.mlc_loss == "db":
    raise InputError(f"--mlc_loss=db: not with --label_slots={opts.label_slots} (its "
                     "per-label weights are over all n labels); use bce or focal")
  if opts.label_descriptions and opts.label_init != "name":
    raise InputError(f"--label_descriptions={opts.label_descriptions}: only read with "
                     "--label_init=name")


# TensorFlow finds a checkpoint's files by pattern matching: under a path holding one of
# these it saves checkpoints it then cannot restore.
_PATTERN_CHARACTERS = "*?[\\"


def check_checkpoint_path(output_dir: str) -> None:
  """Refuses an output directory whose checkpoints TensorFlow could not read back."""
  found = sorted({c for c in os.path.abspath(output_dir) if c in _PATTERN_CHARACTERS})
  if found:
    raise InputError(f"--output_dir={output_dir}: holds {' '.join(found)}, which TensorFlow "
                     "reads as a file pattern, so it could not restore the run's checkpoints; "
                     "choose a path without * ? [ or \\")


def check_export_dir(opts: RunOptions) -> None:
  """Refuses, before anything is trained or written, an export base that cannot be a
  folder: it, or the nearest of its parents that exists, is a file."""
  if not opts.do_export:
    return
  flag = "--export_dir" if opts.export_dir else "--output_dir"
  base = opts.export_dir or os.path.join(opts.output_dir, "export")
  path = os.path.abspath(base)
  # Without --export_dir, OUTPUT_DIR itself is checked with the lock (output_lock).
  while opts.export_dir and not os.path.exists(path) and os.path.dirname(path) != path:
    path = os.path.dirname(path)
  if not os.path.exists(path):
    return
  if not os.path.isdir(path):
    raise InputError(f"{flag}={opts.export_dir or opts.output_dir}: {path} is a file; "
                     f"expected the export folder {base} to be a folder or a new path")


def dev_split_seed(opts: RunOptions) -> int:
  """The seed that carves dev from train: --dev_split_seed, else --seed."""
  return opts.seed if opts.dev_split_seed is None else opts.dev_split_seed


def carried_labels(opts: RunOptions, num_labels: int) -> int:
  """Label tokens in each sequence: n, K with --label_slots below n, 0 without JE."""
  if not opts.joint_embedding:
    return 0
  return opts.label_slots if 0 < opts.label_slots < num_labels else num_labels


def resolve_lengths(opts: RunOptions, num_labels: int, positions: int) -> RunOptions:
  """Fills both lengths: --max_seq_length as given (the caller checks it against the
  encoder's `positions` before reading data); else the text budget (--max_doc_tokens,
  default DEFAULT_DOC_TOKENS lowered to what `positions` leave) plus the label and
  special tokens. Raises InputError when the text budget cannot fit."""
  if opts.max_seq_length is not None:
    return opts
  carried = carried_labels(opts, num_labels)
  others = input_packing.reserved_positions(carried)
  budget = opts.max_doc_tokens
  if budget is None:
    budget = min(DEFAULT_DOC_TOKENS, positions - others)
    if budget < input_packing.MIN_DOC_TOKENS:
      raise InputError(f"{carried} label tokens leave {positions - others} of the "
                       f"encoder's {positions} positions for text; at least "
                       f"{input_packing.MIN_DOC_TOKENS} are needed (fewer labels, "
                       "--label_slots, or --nojoint_embedding)")
  elif budget + others > positions:
    raise InputError(f"--max_doc_tokens={budget}: with the label and special tokens the "
                     f"sequence needs {budget + others} positions, the encoder has "
                     f"{positions} (max_position_embeddings); lower it to at most "
                     f"{positions - others}")
  return dataclasses.replace(opts, max_doc_tokens=budget, max_seq_length=budget + others)


def check_num_labels(opts: RunOptions, num_labels: int) -> None:
  if opts.task in ("plcp", "both") and num_labels < 2:
    raise InputError(f"--task={opts.task}: PLCP needs at least 2 labels, the training split "
                     f"has {num_labels}")
  carried = carried_labels(opts, num_labels) or num_labels
  if opts.task in ("clcp", "both") and opts.clcp_given >= carried:
    raise InputError(f"--clcp_given={opts.clcp_given}: must be below the number of labels "
                     f"each sequence carries ({carried})")
