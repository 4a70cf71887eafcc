"""Command-line flags of run_classifier.py: one per option declared in
`laco_tf/options.py` (help texts, defaults and choices are there)."""

from absl import flags

from laco_tf import options

options.define_flags(flags.FLAGS, __name__)
for _name, _alias in options.ALIASES.items():  # Google BERT's name for the eval batch
  flags.DEFINE_alias(_alias, _name, module_name=__name__)
