"""Shared by the OpenTelemetry tests: an agent run of contract review, and the ground-truth labels its trace
implies (what a user labelling production traces would write)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sim.cli import app
from tests.conftest import SCENARIOS


@pytest.fixture(scope="session")
def agent_run(tmp_path_factory):
    """`cascade run contract_review --engine agent` (30 instances per variant)."""
    out = tmp_path_factory.mktemp("agent") / "run"
    result = CliRunner().invoke(app, ["run", str(SCENARIOS / "contract_review.yaml"), "--engine", "agent",
                                      "--instances", "30", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def labels_from_agent_trace(trace: pd.DataFrame, trace_ids: dict[int, str], path) -> None:
    """One label per instance x retrieve / decide step: did the retrieval read the right passage (else its
    fault), was the decision the right one."""
    rows = []
    for r in trace.itertuples():
        if r.kind == "retrieve":
            own = r.outcome == "error" and r.root_cause_step == r.step
            label = r.error_type if own else "correct"
        elif r.kind == "decide":
            label = "correct" if r.output == r.truth and not r.invalid else "wrong"
        else:
            continue
        rows.append({"trace_id": trace_ids[r.instance], "step": r.step, "label": label})
    pd.DataFrame(rows).to_csv(path, index=False)


def as_list(value):
    """A list column's value as a list (parquet reads them as numpy arrays)."""
    return list(value) if isinstance(value, np.ndarray) else value


def same_tables(original, imported, variant: str = "base") -> None:
    """The imported run has the original's instance, step and trace tables (of one variant)."""
    a = pd.read_parquet(original / "instances.parquet")
    a = a[a.variant == variant].reset_index(drop=True)
    b = pd.read_parquet(imported / "instances.parquet")
    for column in a.columns:
        if column != "variant":
            assert a[column].astype(str).tolist() == b[column].astype(str).tolist(), column
    key = ["step", "kind", "outcome", "error_type", "root_cause_step", "fate"]
    sa = pd.read_parquet(original / "steps.parquet")
    sa = sa[sa.variant == variant].groupby(key)["count"].sum()
    sb = pd.read_parquet(imported / "steps.parquet").groupby(key)["count"].sum()
    pd.testing.assert_series_equal(sa, sb)
    ta = pd.read_parquet(original / "agent_trace.parquet")
    ta = ta[ta.variant == variant].reset_index(drop=True)
    tb = pd.read_parquet(imported / "agent_trace.parquet")
    for column in ("instance", "step", "kind", "outcome", "error_type", "root_cause_step", "inputs",
                   "caught_inputs", "passages", "fault_applied"):
        assert ta[column].map(as_list).tolist() == tb[column].map(as_list).tolist(), column
