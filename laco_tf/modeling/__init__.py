"""The LACO model (paper Section 3): encoder loading, label tokens, layers, losses, precision."""
