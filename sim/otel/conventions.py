"""The span vocabulary of an exported cascade: OpenInference and OpenTelemetry GenAI attributes, and
cascadesim's own under `cascadesim.*`.

No attribute name is a prefix of another (`cascadesim.step.id`, not `cascadesim.step` beside
`cascadesim.step.kind`): Phoenix nests dotted names, and a value cannot also be a namespace.
"""

from __future__ import annotations

# OpenInference (https://github.com/Arize-ai/openinference, semantic conventions)
SPAN_KIND = "openinference.span.kind"
INPUT_VALUE, INPUT_MIME = "input.value", "input.mime_type"
OUTPUT_VALUE, OUTPUT_MIME = "output.value", "output.mime_type"
SESSION_ID = "session.id"
TOOL_NAME = "tool.name"
PROJECT = "openinference.project.name"
"""Resource attribute: the Phoenix project the spans land in."""


def document_id(n: int) -> str:
    """OpenInference's id of the n-th retrieved document (0-based)."""
    return f"retrieval.documents.{n}.document.id"


# OpenTelemetry GenAI semantic conventions
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_AGENT = "gen_ai.agent.name"
GEN_AI_TOOL = "gen_ai.tool.name"
GEN_AI_DATA_SOURCE = "gen_ai.data_source.id"
GEN_AI_DOCUMENTS = "gen_ai.retrieval.documents"
GEN_AI_EVALUATION = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_LABEL = "gen_ai.evaluation.score.label"

# cascadesim
SCENARIO, ENGINE, SEED, VARIANT, INSTANCE = ("cascadesim.scenario", "cascadesim.engine", "cascadesim.seed",
                                             "cascadesim.variant", "cascadesim.instance")
OUTCOME = "cascadesim.outcome"
"""Root span: `action_failure` (>= 1 wrong action), `escalated` (caught or false alarm) or `ok`."""
FAILED, SILENT, CAUGHT, FALSE_ALARM = ("cascadesim.failed", "cascadesim.silent", "cascadesim.caught",
                                       "cascadesim.false_alarm")
N_FAILED_ACTIONS = "cascadesim.failed_actions"
LOSS, FAILURE_LOSS, ESCALATION_COST = "cascadesim.loss", "cascadesim.failure_loss", "cascadesim.escalation_cost"
CURRENCY = "cascadesim.currency"
DIFFICULTY = "cascadesim.difficulty"
ROOT_CAUSE_STEP, ROOT_CAUSE_TYPE = "cascadesim.root_cause.step", "cascadesim.root_cause.error_type"
STEP_ID, STEP_KIND, STEP_OUTCOME = "cascadesim.step.id", "cascadesim.step.kind", "cascadesim.step.outcome"
ERROR_TYPE = "cascadesim.error_type"
"""Step span: the error type of its outcome (error, masked or caught)."""
MASKED = "cascadesim.masked"
FAULT, FAULT_APPLIED = "cascadesim.fault", "cascadesim.fault_applied"

# Span events
ROOT_CAUSE_EVENT = "cascadesim.root_cause"
"""On the step where the chain started (its error type and step as attributes)."""
ACTION_FAILURE_EVENT = "cascadesim.action_failure"
"""On each act step that executed on erroneous input (on the root span when the run kept no per-step trace)."""

OPENINFERENCE_KIND = {"retrieve": "RETRIEVER", "decide": "CHAIN", "verify": "GUARDRAIL", "act": "TOOL"}
"""Span kind of each step kind; a decide step is LLM when a language model made it (agent engine, openai)."""
GEN_AI_OPERATION_OF = {"retrieve": "retrieval", "act": "execute_tool"}
LLM_DECIDE, ROOT_AGENT, ROOT_CHAIN = "LLM", "AGENT", "CHAIN"
