"""Image input: decoding files and uploads safely, and turning a real photo into a 28×28 image."""
