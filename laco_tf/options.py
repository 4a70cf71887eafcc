"""Every option of a run, declared once (the source of flags.py, RunOptions, TrainConfig's
defaults, the resume guard and the README's flag table; `option_schema.py`).

Defaults come from the paper (Section 4.4) where it gives one; otherwise they are chosen
so that the README's sample run finishes in minutes on a CPU, or they are what won on
held-out Reuters stories (BENCHMARKS.md). `python -m laco_tf.options` prints the README's
flag table. Imports no TensorFlow.
"""

from laco_tf import option_schema
from laco_tf.option_schema import FREE, SPEED, Option, make_dataclass, markdown_table
from laco_tf.training import metrics

_opt = Option

OPTIONS = (
    _opt('task', str, 'clcp', 'run', choices=('mltc', 'plcp', 'clcp', 'both'),
         help=('`mltc`: base LACO, L_mlc only; `plcp`: + alpha·L_plcp; `clcp`: + '
               '(1-alpha)·L_clcp; `both`: eq. 7 in full.')),
    _opt('data_dir', str, None, 'run', shown='(required)', resume=FREE,
         help=('Corpus directory.')),
    _opt('data_format', str, None, 'run', choices=('split', 'jsonl', 'laco', 'reuters'),
         shown='detected',
         help=('`split`, `jsonl`, `laco`, `reuters`.')),
    _opt('output_dir', str, None, 'run', shown='(required)', resume=FREE,
         help=("Where the run's files go.")),
    _opt('overwrite_output_dir', bool, False, 'run', resume=FREE,
         help=('Delete a run with different settings instead of refusing (only the files a run '
               'writes; anything else in the directory is kept).')),
    _opt('allow_foreign_files', bool, False, 'run', resume=FREE,
         help=('Let a new run write into an `--output_dir` that holds files this project did '
               'not write (otherwise refused before anything is written); they are never '
               'deleted.')),
    _opt('do_train', bool, False, 'run', shown='all when none is given', resume=FREE,
         help=('Train (resuming from the latest checkpoint if any).')),
    _opt('do_eval', bool, False, 'run', shown='all when none is given', resume=FREE,
         help=('Evaluate the best checkpoint on dev.')),
    _opt('do_predict', bool, False, 'run', shown='all when none is given', resume=FREE,
         help=('Predict and score the test split.')),
    _opt('do_export', bool, False, 'run', shown='all when none is given', resume=FREE,
         help=('Export a SavedModel serving raw text.')),
    _opt('do_predict_train', bool, False, 'run', resume=FREE,
         help=('Also predict and score the training split (for the train-side KL of Table 5).')),
    _opt('encoding', str, 'utf-8', 'run', before='utf-8',
         help=('Text encoding of the corpus files (a UTF-8 byte-order mark is accepted); '
               '`reuters` is always read as ISO-8859-2, as NLTK reads it.')),
    _opt('dev_fraction', float, 0.1, 'run',
         help=('Share of train carved out as dev when there is no dev split.')),
    _opt('test_fraction', float, None, 'run', shown='unset',
         help=('For a corpus without a test split: hold out this share of train as test, the '
               'highest ids when all ids are numbers (Reuters: the latest stories, as '
               "ApteMod's own test split), else the last in file order; dev is carved from the "
               'rest.')),
    _opt('dev_split_seed', int, None, 'run', shown='unset (= `--seed`)',
         help=('Seed of the dev carve alone: set it to keep one dev split while `--seed` '
               'varies.')),
    _opt('bert_model', str, 'minilm', 'input',
         help=('`minilm` (embedded package), a local Hugging Face directory, a Google release '
               'directory, or a hub id (see "Choosing an encoder").')),
    _opt('bert_config_file', str, None, 'input', shown='none',
         help=('Google BERT release: bert_config.json (with --vocab_file, --init_checkpoint).')),
    _opt('vocab_file', str, None, 'input', shown='none',
         help=('Google BERT release: vocab.txt.')),
    _opt('init_checkpoint', str, None, 'input', shown='none',
         help=('Google BERT release: TF1 checkpoint prefix, e.g. .../bert_model.ckpt.')),
    _opt('label_init', str, 'random', 'input', choices=('random', 'name'),
         help=("`name`: start label tokens at their names' mean wordpiece embedding (our "
               'extension; on held-out Reuters stories one seed scored below `random`, '
               'BENCHMARKS.md).')),
    _opt('label_descriptions', str, None, 'input', shown='none',
         help=('`label<TAB>text` file used by `--label_init=name`.')),
    _opt('do_lower_case', bool, None, 'input', shown='from the model',
         help=('Lower-case the text (default: `tokenizer_config.json`, else "uncased"/"cased" '
               'in the name).')),
    _opt('max_seq_length', int, None, 'input', shown='unset (paper: 320)',
         help=('Length of `[CLS] text [SEP] labels [SEP]`; the text is truncated. Set this or '
               '`--max_doc_tokens`, not both.')),
    _opt('label_slots', int, 0, 'input', before=0,
         help=('Label slots (our extension): each training sequence carries this many label '
               'tokens (every relevant label, then uniformly drawn others; a document with '
               'more relevant labels carries a random K of them) instead of all n, and '
               'inference scores every label in chunks of this many (one encoder pass per '
               'chunk). The text budget is then taken beside K label tokens, not n. 0, or at '
               'least the label count: every label in every sequence (paper 3.2). See "Label '
               'sets larger than the encoder".')),
    _opt('slot_negatives', str, 'uniform', 'input', choices=('uniform', 'shortlist'),
         before='uniform',
         help=("With `--label_slots`: what fills the slots a document's relevant labels leave: "
               "`uniform` draws, or `shortlist`, the first stage's highest-scoring wrong "
               'labels in rank order (then uniform draws), as shortlist inference carries '
               'them.')),
    _opt('label_inference', str, 'exhaustive', 'input', choices=('exhaustive', 'shortlist'),
         resume=FREE,
         help=('With `--label_slots`: `exhaustive` scores every label in chunks of K (one '
               'encoder pass each); `shortlist` lets the first stage (TF-IDF label centroids, '
               'in the graph) propose K labels that one pass scores, the others get '
               'probability 0. May change between invocations (evaluate one trained run both '
               'ways).')),
    _opt('max_doc_tokens', int, None, 'input', shown='unset: 256',
         help=('Text budget in wordpieces, independent of the label count: the sequence '
               "becomes text + labels + 3 (text + 2 without JE), checked against the encoder's "
               "positions. With neither length set, 256, or what the encoder's positions leave "
               'beside the label tokens when that is less.')),
    _opt('train_batch_size', int, 16, 'optimisation', note='paper: 32',
         help=('Global batch, split across replicas.')),
    _opt('eval_batch_size', int, 64, 'optimisation', resume=FREE,
         help=('Global evaluation batch size.')),
    _opt('learning_rate', float, 5e-05, 'optimisation', note='paper',
         help=('Adam rate of the encoder.')),
    _opt('head_learning_rate', float, 0.001, 'optimisation',
         help=('Adam rate of CA, the classifier and the auxiliary heads (our extension).')),
    _opt('warmup_proportion', float, 0.0, 'optimisation',
         help=("Linear warmup over this share of steps, then linear decay; 0 keeps the paper's "
               'constant rate.')),
    _opt('weight_decay', float, 0.0, 'optimisation', before=0.0,
         help=('Decoupled weight decay (AdamW) per unit of learning rate, on all weights but '
               'biases and LayerNorm (our extension; BERT fine-tuning uses 0.01); 0 is the '
               "paper's Adam.")),
    _opt('layer_decay', float, 1.0, 'optimisation', before=1.0,
         help=("Layer-wise learning-rate decay (our extension; LACO's release used 0.8): the "
               "encoder's top layer trains at `--learning_rate`, each layer below at this "
               'factor times the one above, the embeddings (label tokens included) last.')),
    _opt('mlc_loss', str, 'bce', 'optimisation', choices=('bce', 'focal', 'db'), before='bce',
         help=('Loss of the multi-label task: `bce` (eq. 4), `focal` (Lin et al., 2017) or '
               '`db`, the distribution-balanced loss for long-tailed label sets (Huang et al., '
               'EMNLP 2021, with their released settings); PLCP and CLCP keep BCE. On held-out '
               'Reuters stories `db` scored below BCE and `focal` level with it (-0.2 '
               'micro-F1, +1.5 macro-F1; one seed each, BENCHMARKS.md).')),
    _opt('ema_decay', float, 0.999, 'optimisation', before=0.0,
         help=('Keep an exponential moving average of the weights (decay capped at '
               "(1+t)/(10+t) after step t, TensorFlow's `num_updates` rule) and use it for dev "
               'evaluation (so the best checkpoint and early stopping), predictions and the '
               "export; the weights' own updates are unchanged. With 0.999 the cap binds for "
               'the first ~9,000 steps: the average spans about the last ninth of the steps '
               'taken (our extension: dev and held-out Reuters stories scored higher with it, '
               'BENCHMARKS.md); 0: off, the paper\'s weights.')),
    _opt('num_train_epochs', float, 3.0, 'optimisation', resume=FREE,
         help=('Epochs when `--max_steps` is 0; the best dev checkpoint is kept (the paper '
               'trains until early stopping).')),
    _opt('max_steps', int, 0, 'optimisation', resume=FREE,
         help=('Total training steps, when > 0.')),
    _opt('seed', int, 0, 'optimisation',
         help=('Initialisation, shuffling, auxiliary draws, and dev carving unless '
               '`--dev_split_seed` is set.')),
    _opt('precision', str, 'auto', 'speed', choices=('auto', 'fp32', 'bf16', 'fp16'),
         resume=SPEED,
         help=('`fp32`, `bf16` or `fp16` compute (variables, losses and probabilities stay '
               'float32); `auto`: bf16 on GPUs of compute capability >= 8.0 and on CPUs with '
               'AVX-512 BF16 or AMX, fp16 on older GPUs, else fp32 (see "Training fast").')),
    _opt('jit_compile', bool, False, 'speed', resume=SPEED,
         help=('XLA for the forward/backward pass and prediction; batch lengths are padded to '
               'multiples of 32.')),
    _opt('distribution_strategy', str, 'auto', 'speed', choices=('auto', 'one_device',
         'mirrored', 'multi_worker_mirrored'), resume=SPEED,
         help=('`auto` (mirrored over all local GPUs when there are several, else one device), '
               '`one_device`, `mirrored` or `multi_worker_mirrored` (the cluster in '
               '`TF_CONFIG`; see "Training on several GPUs or machines").')),
    _opt('steps_per_loop', int, 1, 'speed', resume=SPEED,
         help=("Training steps inside one `tf.function` call (Orbit's `steps_per_loop`).")),
    _opt('length_bucketing', bool, True, 'speed', before=False,
         help=('Batch training documents of similar length (seeded, resumable): faster, with '
               'held-out scores within seed noise (BENCHMARKS.md); with it (or '
               "`--jit_compile`) training's GELU and dropout masking also run as XLA-compiled "
               'chains (see "Training fast"); `--nolength_bucketing` pads each batch to its '
               'longest document.')),
    _opt('microbatch_size', int, 0, 'speed', resume=SPEED,
         help=('Run each training batch in length-sorted micro-batches of this many documents, '
               'each padded to its own longest, and sum their gradients: the same batches and '
               'updates, fewer padded positions, faster steps, but two held-out seeds scored '
               'lower with 8 (see "Training fast"); 0: whole batches; not with '
               '`--jit_compile`.')),
    _opt('joint_embedding', bool, True, 'model',
         help=('False: the w/o-JE ablation. The document is encoded alone and each label has a '
               'learnable, randomly initialised vector.')),
    _opt('cross_attention', bool, True, 'model',
         help=('False: the w/o-CA ablation. The prediction comes from a pooled document '
               'vector. Both false is the BERT baseline (`--task=mltc` only).')),
    _opt('pooling', str, None, 'model', choices=('cls', 'mean'), shown='`cls`',
         help=('Without CA: `cls` takes the [CLS] state (paper); `mean` averages the word '
               'states (our extension).')),
    _opt('label_join_layer', int, 0, 'model', before=0,
         help=('Label tokens join the sequence at this encoder layer (our extension): the '
               'first J layers read the text alone, the rest read text and labels as in '
               'paper 3.2, so a label position costs (N-J)/N of a text position and '
               "exhaustive inference shares the text's first J layers across chunks. 0: "
               'every layer (paper). Below the encoder\'s layer count.')),
    _opt('window_size', int, 10, 'model', note='paper',
         help=('CA convolution window.')),
    _opt('dropout_rate', float, 0.1, 'model',
         help=('Dropout on the CA document vector.')),
    _opt('gamma', float, 0.5, 'model', note='paper',
         help=('PLCP IsCo-occur : NotCo-occur ratio.')),
    _opt('plcp_pairs_per_doc', int, 4, 'model',
         help=('PLCP pairs drawn per document per epoch.')),
    _opt('clcp_given', int, 1, 'model',
         help=('Labels given to CLCP (s in the paper).')),
    _opt('alpha', float, 0.5, 'model',
         help=('Eq. 7 weight, in (0, 1).')),
    _opt('eval_every_steps', int, 0, 'evaluation', resume=FREE,
         help=('Dev evaluation interval; 0 means once per epoch.')),
    _opt('save_checkpoints_steps', int, 0, 'evaluation', resume=FREE,
         help=('Also save the latest checkpoint every N steps between evaluations (Google '
               "BERT's flag), so a stopped run loses less; 0: at evaluations only.")),
    _opt('early_stopping_patience', int, 0, 'evaluation', resume=FREE,
         help=('Steps without a gain of `--early_stopping_metric` before stopping (paper: '
               '50,000, far beyond 3 epochs of most corpora); 0 never stops early. Either way '
               'the best dev checkpoint is evaluated and exported.')),
    _opt('early_stopping_metric', str, 'micro_f1', 'evaluation',
         choices=metrics.SELECTION_METRICS, before='micro_f1',
         help=('The dev score that chooses the best checkpoint and that early stopping '
               'watches: `micro_f1` (paper), `macro_f1`, `subset_accuracy`, `precision_at_k`, '
               '`recall_at_k`, `ndcg_at_k` (k = 1, 3, 5).')),
    _opt('threshold', float, 0.5, 'evaluation', resume=FREE,
         help=('A label is predicted when its probability exceeds this.')),
    _opt('threshold_strategy', str, 'fixed', 'evaluation', choices=('fixed', 'global',
         'per_label'), resume=FREE,
         help=('Decision rule of the final predictions and the export: `fixed` (`--threshold`, '
               "the paper's), `global` (one threshold, best dev micro-F1 on a 0.02 grid) or "
               "`per_label` (each label's best dev F1; labels with fewer than 5 dev positives "
               'keep the global one; with `--at_least_one_label`, tuned for dev macro-F1 under '
               'that rule by coordinate ascent). Written to `thresholds.json`; early stopping '
               'always scores dev at `--threshold`.')),
    _opt('at_least_one_label', bool, False, 'evaluation', resume=FREE,
         help=('Give a document its most probable label when none clears its threshold; for '
               "corpora where every document has a label: on Reuters it raised every run's dev "
               'scores and held-out macro-F1, and the SVM most (BENCHMARKS.md).')),
    _opt('serving_chunk_size', int, 8, 'evaluation', resume=FREE,
         help=("The SavedModel sorts a request's texts by length and runs the encoder on "
               'chunks of this many, each padded to its own longest text (less padding in '
               'large requests of mixed lengths; BENCHMARKS, "Serving in length-sorted '
               'chunks"); 0 runs the whole request as one batch.')),
    _opt('export_dir', str, None, 'evaluation', shown='`OUTPUT_DIR/export`', resume=FREE,
         help=('Export base: each export is a new numbered SavedModel folder under it (TF '
               "Serving's `--model_base_path`), written whole under a temporary name, also "
               'when several runs export into one base at once.')),
)

SECTIONS = {"run": "what to run", "input": "encoder and input", "optimisation": "optimisation",
            "speed": "speed (our extensions; none of them changes the model)",
            "model": "model (paper 3.3-3.4)", "evaluation": "evaluation, stopping and export"}
BY_NAME = {o.name: o for o in OPTIONS}
DEFAULTS = {o.name: o.default for o in OPTIONS}
# Another name of a flag (Google BERT's for the evaluation batch).
ALIASES = {"eval_batch_size": "predict_batch_size"}
# Options that only say what to do now, or when to stop: they may change between
# invocations on the same output directory (e.g. to train longer, or re-evaluate).
OPERATIONAL = frozenset(o.name for o in OPTIONS if o.resume == FREE)
# Options that change speed, not the model: recorded in run_config.json, free to change
# on a resume.
RECORDED_OPERATIONAL = frozenset(o.name for o in OPTIONS if o.resume == SPEED)
# What an option added later meant for runs recorded before it existed (else None).
BEFORE_THE_OPTION = {o.name: o.before for o in OPTIONS if o.has_before}

RunOptions = make_dataclass(
    OPTIONS, "RunOptions",
    "A run's options: one field per flag of run_classifier.py (laco_tf/options.py).")
RunOptions.__module__ = __name__


def define_flags(flag_values, module_name: str) -> None:
  """The absl flag of every option, attributed to `module_name` (flags.py)."""
  option_schema.define_flags(OPTIONS, flag_values, module_name)


def types() -> dict:
  """name -> bool, int, float or str of every option."""
  return {o.name: o.kind for o in OPTIONS}


if __name__ == "__main__":
  print(markdown_table(OPTIONS, ALIASES, SECTIONS), end="")
