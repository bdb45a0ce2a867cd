"""LangGraph agents over real text (contract review, ticket triage). Arrives with the agent-engine issue."""

from sim import _env  # noqa: F401  (offline environment defaults before langgraph / sentence-transformers)
