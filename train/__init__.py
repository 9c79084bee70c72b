"""Training stage: Q-SNNs in PyTorch whose evaluation forward is exactly the integer contract."""
