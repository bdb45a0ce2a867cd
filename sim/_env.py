"""Offline environment defaults, applied before any heavy library is imported (DESIGN.md, Environment rules)."""

import os

# setdefault: a user who deliberately sets one of these keeps their value.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Tokenizer thread pools fight our own parallelism; left on, throughput swings about 3x.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
