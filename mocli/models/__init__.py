"""Motion encoder, heads, registry of architectures and weights, checkpoints."""
