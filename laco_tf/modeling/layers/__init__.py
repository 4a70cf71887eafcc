"""Keras layers of LACO, one idea per module (paper Section 3)."""

from laco_tf.modeling.layers.cross_attention import DocumentLabelCrossAttention
from laco_tf.modeling.layers.heads import (ConditionalCooccurrenceHead, LabelStateTransform,
                                  PairwiseCooccurrenceHead)

__all__ = ["DocumentLabelCrossAttention", "LabelStateTransform", "PairwiseCooccurrenceHead",
           "ConditionalCooccurrenceHead"]
