"""LangGraph agents over real text: contract review and ticket triage over the built-in corpora (or Banking77),
the simulated reader and an OpenAI-compatible policy, fault injection, and the bridge to users' own graphs."""

from sim import _env  # noqa: F401  (offline environment defaults before langgraph / sentence-transformers)
