"""The pieces of the training loop in `fmnist.models.engine`: settings (`config`), device
augmentation (`augment`), optimiser and schedule (`optim`), callbacks (`callbacks`), and
placement, precision and test-time augmentation (`inference`)."""
