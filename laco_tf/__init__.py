"""LACO-TF: label-correlation-aware multi-label text classification in TensorFlow.

Implements Zhang et al., "Enhancing Label Correlation Feedback in Multi-Label Text
Classification via Multi-Task Learning" (Findings of ACL 2021). The paper's section
numbers and equations are cited in each module's docstrings.
"""

__version__ = "0.1.0"
