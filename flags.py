"""Command-line flags of run_classifier.py (defaults from the paper, Section 4.4, where it
gives one; otherwise chosen so the README's sample run finishes in minutes on a CPU)."""

from absl import flags

from laco_tf.training import metrics

# -- what to run -----------------------------------------------------------------------------
flags.DEFINE_enum("task", "clcp", ["mltc", "plcp", "clcp", "both"],
                  "mltc: base LACO (L_mlc only); plcp: + alpha * L_plcp; clcp: + (1 - alpha) "
                  "* L_clcp; both: eq. 7 in full.")
flags.DEFINE_string("data_dir", None, "Directory holding the corpus (format auto-detected).")
flags.DEFINE_enum("data_format", None, ["split", "jsonl", "laco", "reuters"],
                  "Force a data format instead of detecting it: split (text_/label_ files, "
                  "AAPD/RCV1-V2), jsonl, laco (the authors' *_data.json), reuters (NLTK).")
flags.DEFINE_string("output_dir", None, "Where checkpoints, logs, results and the SavedModel go.")
flags.DEFINE_bool("overwrite_output_dir", False,
                  "Delete a run with different settings in --output_dir instead of refusing.")
flags.DEFINE_bool("allow_foreign_files", False,
                  "Let a new run write into an --output_dir holding files this project did not "
                  "write (they are never deleted, not even by --overwrite_output_dir).")
flags.DEFINE_bool("do_train", False, "Train (resuming from the latest checkpoint if any).")
flags.DEFINE_bool("do_eval", False, "Evaluate the best checkpoint on dev.")
flags.DEFINE_bool("do_predict", False, "Predict and score the test split.")
flags.DEFINE_bool("do_export", False, "Export a SavedModel serving raw text.")
flags.DEFINE_bool("do_predict_train", False,
                  "Also predict and score the training split (for the label-correlation "
                  "analysis on train, paper Table 5).")
flags.DEFINE_string("encoding", "utf-8",
                    "Text encoding of the corpus files (a UTF-8 byte-order mark is accepted); "
                    "the reuters format is always read as NLTK reads it, ISO-8859-2.")
flags.DEFINE_float("dev_fraction", 0.1,
                   "Share of train carved out as dev when there is no dev split (which share: "
                   "--dev_split_seed).")
flags.DEFINE_float("test_fraction", None,
                   "For a corpus without a test split: hold out this share of train as test, "
                   "the highest document ids when all ids are numbers (Reuters: the latest "
                   "stories, as ApteMod's test split), else the last in file order; unset: none.")
flags.DEFINE_integer("dev_split_seed", None,
                     "Seed of the dev carve; unset = --seed. Set it to keep one dev split while "
                     "--seed varies (multi-seed runs).")

# -- encoder and input -------------------------------------------------------------------------
flags.DEFINE_string("bert_model", "minilm",
                    "'minilm' (the embedded all-MiniLM-L6-v2 package), a local Hugging Face "
                    "directory (config.json, vocab.txt, tf_model.h5 / model.safetensors), a "
                    "Google BERT release directory (bert_config.json, vocab.txt, "
                    "bert_model.ckpt.*), or a hub id (needs network or the local HF cache).")
flags.DEFINE_string("bert_config_file", None,
                    "Google BERT release: bert_config.json (with --vocab_file, --init_checkpoint).")
flags.DEFINE_string("vocab_file", None, "Google BERT release: vocab.txt.")
flags.DEFINE_string("init_checkpoint", None,
                    "Google BERT release: TF1 checkpoint prefix, e.g. .../bert_model.ckpt.")
flags.DEFINE_enum("label_init", "random", ["random", "name"],
                  "Label-token embeddings start as they are (random: unused slots keep their "
                  "rows, new rows are drawn) or at the mean wordpiece embedding of the label's "
                  "name or description (our extension).")
flags.DEFINE_string("label_descriptions", None,
                    "Optional file of 'label<TAB>description' lines for --label_init=name.")
flags.DEFINE_bool("do_lower_case", None,
                  "Lower-case text; default: the model's tokenizer_config.json, else 'uncased' / "
                  "'cased' in its name, else true.")
flags.DEFINE_integer("max_seq_length", None,
                     "Max wordpieces of [CLS] text [SEP] labels [SEP]; the text is truncated "
                     "(paper: 320). Set this or --max_doc_tokens, not both.")
flags.DEFINE_integer("label_slots", 0,
                     "Label slots (our extension, for label sets larger than the encoder): each "
                     "training sequence carries this many label tokens (the document's relevant "
                     "labels, then uniformly drawn others) instead of all n; inference scores "
                     "every label in chunks of this many. 0, or >= the label count: every label "
                     "in every sequence (paper 3.2).")
flags.DEFINE_enum("slot_negatives", "uniform", ["uniform", "shortlist"],
                  "With --label_slots: how a training sequence fills the slots its relevant "
                  "labels leave: labels drawn uniformly, or the first-stage shortlist's "
                  "highest-scoring wrong labels (then uniform draws).")
flags.DEFINE_enum("label_inference", "exhaustive", ["exhaustive", "shortlist"],
                  "With --label_slots: how inference scores the n labels: every label, in "
                  "chunks of --label_slots (one encoder pass each), or only the first-stage "
                  "shortlist's top --label_slots (one pass; the others get probability 0). "
                  "May change between invocations.")
flags.DEFINE_integer("max_doc_tokens", None,
                     "Text budget in wordpieces, independent of the label count: the sequence "
                     "becomes text + labels + 3 (text + 2 without joint embedding), checked "
                     "against the encoder's positions. With neither this nor --max_seq_length: "
                     "256 (what wins on held-out Reuters stories, BENCHMARKS.md), or less "
                     "when the label tokens leave fewer of the encoder's positions.")

# -- optimisation ------------------------------------------------------------------------------
flags.DEFINE_integer("train_batch_size", 16,
                     "Global training batch size (paper: 32; 16 wins on held-out Reuters "
                     "stories, BENCHMARKS.md).")
flags.DEFINE_integer("eval_batch_size", 64, "Global evaluation batch size.")
flags.DEFINE_alias("predict_batch_size", "eval_batch_size")  # Google BERT's name for it
flags.DEFINE_float("learning_rate", 5e-5, "Adam learning rate of the encoder (paper: 5e-5).")
flags.DEFINE_float("head_learning_rate", 1e-3,
                   "Adam learning rate of the new layers (CA, classifier, PLCP/CLCP heads); our "
                   "extension: randomly initialised heads learn too slowly at 5e-5.")
flags.DEFINE_float("warmup_proportion", 0.0,
                   "Share of steps of linear warmup, followed by linear decay to 0; 0 keeps the "
                   "paper's constant rate.")
flags.DEFINE_float("weight_decay", 0.0,
                   "Decoupled weight decay (AdamW) per unit of learning rate, on every weight "
                   "but biases and LayerNorm; our extension (BERT fine-tuning uses 0.01), 0: "
                   "the paper's Adam.")
flags.DEFINE_float("layer_decay", 1.0,
                   "Layer-wise learning-rate decay: the encoder's top layer trains at "
                   "--learning_rate, each layer below at this factor times the one above, the "
                   "embeddings last; our extension (LACO's release used 0.8), 1: off.")
flags.DEFINE_enum("mlc_loss", "bce", ["bce", "focal", "db"],
                  "Loss of the multi-label task: eq. 4's BCE (paper), focal loss, or the "
                  "distribution-balanced loss for long-tailed label sets (our extension, "
                  "Huang et al., EMNLP 2021). PLCP and CLCP keep BCE.")
flags.DEFINE_float("ema_decay", 0.999,
                   "Decay of an exponential moving average of the weights, capped at "
                   "(1+t)/(10+t) after step t (with 0.999, for ~9,000 steps); dev evaluation "
                   "(so the best checkpoint and early stopping), predictions and the export use "
                   "the average; the weights' own updates are unchanged. Our "
                   "extension (not in the paper; dev and held-out Reuters stories scored higher "
                   "with it, BENCHMARKS.md); 0: off, the paper's weights.")
flags.DEFINE_float("num_train_epochs", 3.0,
                   "Epochs to train (ignored when --max_steps > 0); the paper trains until "
                   "early stopping. The best dev checkpoint is kept either way. 3 is the "
                   "protocol that wins on held-out Reuters stories (BENCHMARKS.md).")
flags.DEFINE_integer("max_steps", 0, "Train this many steps in all (overrides epochs) if > 0.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation, shuffling, sampling, and of the dev "
                     "carve unless --dev_split_seed is given.")

# -- speed (our extensions; none of them changes the model) ------------------------------------
flags.DEFINE_enum("precision", "auto", ["auto", "fp32", "bf16", "fp16"],
                  "Compute type (Keras mixed precision; variables, losses and probabilities stay "
                  "float32). auto: bf16 on GPUs with bf16 (compute capability >= 8.0) and on "
                  "CPUs with AVX-512 BF16 or AMX, fp16 on older GPUs, else fp32.")
flags.DEFINE_bool("jit_compile", False,
                  "Compile the forward/backward pass and prediction with XLA (usually faster on "
                  "GPUs, slower on CPUs); batch lengths are padded to multiples of 32.")
flags.DEFINE_enum("distribution_strategy", "auto",
                  ["auto", "one_device", "mirrored", "multi_worker_mirrored"],
                  "tf.distribute strategy (TF Model Garden's names). auto: mirrored over all "
                  "local GPUs when there are several, else one device. multi_worker_mirrored: "
                  "the cluster in TF_CONFIG; run the same command on every worker, with "
                  "--data_dir and --output_dir on a file system they all see (README).")
flags.DEFINE_integer("steps_per_loop", 1,
                     "Training steps run inside one tf.function call (Orbit's steps_per_loop): "
                     "larger values remove per-step host overhead on accelerators.")
flags.DEFINE_bool("length_bucketing", True,
                  "Batch training documents of similar length (seeded, resumable; lengths "
                  "rounded up to multiples of 16), so batches carry little padding: 1.4-1.5x "
                  "faster on Reuters with held-out scores within seed noise (BENCHMARKS.md). "
                  "--nolength_bucketing pads each batch to its longest document (runs "
                  "recorded before 2026-11-27 resume with it). Prediction always runs in "
                  "length order.")

flags.DEFINE_integer("microbatch_size", 0,
                     "Run each training batch in length-sorted micro-batches of this many "
                     "documents, each padded to its own longest, and sum their losses and "
                     "gradients: the same batches and updates (up to rounding; dropout draws "
                     "differ), fewer padded positions: 1.47x faster steps on Reuters on 2 CPU "
                     "cores with 8, but two held-out seeds scored lower (BENCHMARKS.md), so "
                     "0 (each batch whole) by default. Not with --jit_compile.")

# -- model (paper 3.3-3.4) ------------------------------------------------------------------------
flags.DEFINE_bool("joint_embedding", True,
                  "Encode document and label tokens together (JE, paper 3.2). false: the w/o-JE "
                  "ablation (document alone, a learnable vector per label).")
flags.DEFINE_bool("cross_attention", True,
                  "Build the document vector with CA (paper 3.3.1). false: the w/o-CA ablation "
                  "(a pooled document vector); both false is the BERT baseline.")
flags.DEFINE_enum("pooling", None, ["cls", "mean"],
                  "Document vector without CA: the [CLS] state (paper; default) or the mean of "
                  "the word states (our extension; suits encoders whose [CLS] was never trained "
                  "for classification).")
flags.DEFINE_integer("window_size", 10, "CA convolution window (paper: 10).")
flags.DEFINE_float("dropout_rate", 0.1, "Dropout on the CA document vector.")
flags.DEFINE_float("gamma", 0.5, "PLCP IsCo-occur : NotCo-occur ratio (paper: 0.5).")
flags.DEFINE_integer("plcp_pairs_per_doc", 4,
                     "PLCP label pairs drawn per document per epoch (our choice; the release "
                     "drew 1).")
flags.DEFINE_integer("clcp_given", 1, "Labels given to CLCP (s in the paper).")
flags.DEFINE_float("alpha", 0.5, "Eq. 7 weight: alpha * L_plcp + (1 - alpha) * L_clcp.")

# -- evaluation and stopping ---------------------------------------------------------------------
flags.DEFINE_integer("eval_every_steps", 0, "Evaluate on dev every N steps; 0: once per epoch.")
flags.DEFINE_integer("save_checkpoints_steps", 0,
                     "Also save the latest checkpoint every N steps, between evaluations "
                     "(Google BERT's flag); 0: only at evaluations. A rerun resumes from the "
                     "newest.")
flags.DEFINE_integer("early_stopping_patience", 0,
                     "Stop after this many steps without a gain of --early_stopping_metric "
                     "(paper: 50,000, which needs far more epochs than 3); 0: never stop early. "
                     "Either way the best dev checkpoint is the one evaluated and exported.")
flags.DEFINE_enum("early_stopping_metric", "micro_f1", list(metrics.SELECTION_METRICS),
                  "The dev score that chooses the best checkpoint (the one evaluated and "
                  "exported) and that early stopping watches: micro-F1 as the paper "
                  "(section 4.4), or macro-F1, subset accuracy, precision@k, recall@k, "
                  "nDCG@k (k = 1, 3, 5; our extension).")
flags.DEFINE_float("threshold", 0.5, "A label is predicted when its probability exceeds this "
                   "(the fixed rule, and the start of the tuned ones).")
flags.DEFINE_enum("threshold_strategy", "fixed", ["fixed", "global", "per_label"],
                  "Decision rule for the final predictions and the export: fixed --threshold "
                  "(paper), one threshold tuned on dev micro-F1, or one per label tuned on its "
                  "dev F1 (labels with < 5 dev positives keep the global one). Dev evaluations "
                  "during training (early stopping) always use --threshold.")
flags.DEFINE_bool("at_least_one_label", False,
                  "Give each document its most probable label when no label clears its threshold.")
flags.DEFINE_integer("serving_chunk_size", 8,
                     "The SavedModel sorts each request's texts by length and runs the encoder "
                     "on chunks of this many, each padded to its own longest text (less padding "
                     "for large requests of mixed lengths; measured on CPU); 0: the whole "
                     "request as one batch (a GPU may prefer it: not measured).")
flags.DEFINE_string("export_dir", None,
                    "Export base: each export is a new numbered SavedModel folder under it "
                    "(TF Serving's --model_base_path); default OUTPUT_DIR/export.")
