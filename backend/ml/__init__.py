"""Machine learning: features, labels, validation, training, serving, tracking."""
