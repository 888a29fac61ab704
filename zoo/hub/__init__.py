"""Models at rest: checkpoints (read safely, checked on resume), bundles with their hashes, the pretrained registry, averaging, atomic writes."""
