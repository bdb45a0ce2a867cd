"""The fused Monte Carlo kernel against the numpy kernel (the reference): same traces, same tables, byte for byte;
its compiled tally against `Tally.add`: the same counts, field by field.

The first tests in a fresh checkout compile the kernel and its tally (about 8 s on a busy 2-core machine; numba
caches them in __pycache__).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from sim.cli import app
from sim.core.errors import CascadeError
from sim.core.seeding import stream, uniforms
from sim.engines.monte_carlo.fused import FusedKernel, _thresholds
from sim.engines.monte_carlo.fused_tally import DISTINCT, _unique
from sim.engines.monte_carlo.kernel import Kernel
from sim.model.plan import compile_plan
from sim.runner import run
from sim.scenario.load import load_scenario, resolve_variants, scenario_from_dict
from sim.trace.schema import instance_outcomes
from sim.trace.tally import Tally
from tests.conftest import BUILTIN_SCENARIOS
from tests.engines.test_engines_agree import workflows


def assert_same_trace(a, b) -> None:
    """Every field of two BlockTraces equal, with the same dtypes and the same dict keys in the same order."""
    assert a.n == b.n
    assert (a.level is None) == (b.level is None)
    if a.level is not None:
        assert a.level.dtype == b.level.dtype and np.array_equal(a.level, b.level)
    for x, y in zip(a.tokens, b.tokens, strict=True):
        assert (x is None) == (y is None)
        if x is not None:
            assert x.dtype == y.dtype and np.array_equal(x, y)
    for name in ("masked", "caught", "detected", "gate_caught"):
        da, db = getattr(a, name), getattr(b, name)
        assert list(da) == list(db), name
        for key in da:
            assert da[key].dtype == db[key].dtype and np.array_equal(da[key], db[key]), (name, key)


def assert_same_tally(a: Tally, b: Tally) -> None:
    """Every count of two Tallies equal, with the same types and dtypes; histograms with their keys in the same
    order."""
    assert list(vars(a)) == list(vars(b))
    for name, x in vars(a).items():
        y = getattr(b, name)
        assert type(x) is type(y), name
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), name
        elif isinstance(x, list):
            assert [list(h.items()) for h in x] == [list(h.items()) for h in y], name
        elif name != "plan":
            assert (list(x.items()) if isinstance(x, dict) else x) == (list(y.items()) if isinstance(y, dict) else y), name


def tallies_of_both(scenario, blocks) -> tuple[dict[str, Tally], dict[str, Tally]]:
    """Every variant's Tally of `blocks` ((block, start, stop) slices) counted by `Tally.add` from the numpy
    kernel's traces and by the fused kernel's compiled tally, each paired with its own base variant."""
    plans = {name: compile_plan(s, name) for name, s in resolve_variants(scenario).items()}
    numpy, fused = ({name: Tally(plan) for name, plan in plans.items()} for _ in range(2))
    for block, start, stop in blocks:
        base_numpy = base_fused = None
        for name, plan in plans.items():
            out = instance_outcomes(plan, Kernel(plan).simulate(block, start, stop))
            numpy[name].add(Kernel(plan).simulate(block, start, stop), out, base_numpy)
            kernel = FusedKernel(plan)
            paired = kernel.add_block(fused[name], kernel.simulate(block, start, stop), base_fused)
            assert np.array_equal(paired.failed, out.failed) and np.array_equal(paired.loss, out.loss)
            if name == "base":
                base_numpy, base_fused = out, paired
    return numpy, fused


@pytest.mark.parametrize("path", BUILTIN_SCENARIOS, ids=lambda p: p.stem)
def test_compiled_tally_counts_what_tally_add_counts(path):
    numpy, fused = tallies_of_both(load_scenario(path), ((0, 0, 65_536), (2, 1_000, 9_000), (3, 0, 1)))
    for name in numpy:
        assert_same_tally(fused[name], numpy[name])


def assert_same_tables(a, b) -> None:
    assert json.dumps(a.summary) == json.dumps(b.summary)
    assert a.instances_arrow.equals(b.instances_arrow)
    assert a.steps.equals(b.steps)


@pytest.mark.parametrize("path", BUILTIN_SCENARIOS, ids=lambda p: p.stem)
def test_fused_kernel_draws_the_same_trace_as_numpy(path):
    for name, scenario in resolve_variants(load_scenario(path)).items():
        plan = compile_plan(scenario, name)
        fused, numpy = FusedKernel(plan), Kernel(plan)
        for block, start, stop, attempt in ((0, 0, 65_536, 0), (2, 1_000, 9_000, 0), (1, 0, 3_000, 5)):
            assert_same_trace(fused.simulate(block, start, stop, attempt), numpy.simulate(block, start, stop, attempt))


def test_fused_draws_are_the_uniforms_of_the_same_streams():
    """The 32-bit outputs the fused kernel draws make exactly `uniforms` (float32) of the same streams (the
    difficulty's too), for an odd and an even count, a repeated attempt and a buffer reused from a longer
    block."""
    plan = compile_plan(load_scenario(BUILTIN_SCENARIOS[0]))
    fused = FusedKernel(plan)
    for block, stop, attempt in ((0, 65_536, 0), (3, 1_001, 0), (1, 20, 4)):
        bits = fused.draws(block, stop, attempt)
        for j, name in enumerate(fused.names):
            made = (bits[j, :stop] >> 8).astype(np.float32) * np.float32(2.0**-24)
            assert np.array_equal(made, uniforms(plan.seed, name, block, 0, stop, attempt)), (name, block, stop)
        assert plan.levels.count > 1  # then one more row: the difficulty stream, the same at every attempt
        made = (bits[len(fused.names), :stop] >> 8).astype(np.float32) * np.float32(2.0**-24)
        assert np.array_equal(made, uniforms(plan.seed, "difficulty", block, 0, stop))


def test_integer_thresholds_decide_as_the_float32_comparisons():
    """u < p on float32s (the numpy kernel) exactly where the draw's top 24 bits are below `_thresholds(p)`,
    for probabilities on and off the 2**-24 grid, 0, 1, the smallest float32s and every draw next to each."""
    rng = stream(19, "tests/integer_thresholds", 0)
    p = np.concatenate([[0.0, 1.0, 2.0**-24, 3 * 2.0**-24, 1 - 2.0**-24, 1e-30, 1e-8, 0.5],
                        rng.random(2_000), rng.integers(0, 2**24, 500) * 2.0**-24]).astype(np.float32)
    threshold = _thresholds(p)
    for shift in range(-2, 3):
        bits = np.clip(threshold + shift, 0, 2**24 - 1)
        u = bits.astype(np.float32) * np.float32(2.0**-24)  # numpy's float32 uniform from those bits
        assert np.array_equal(u < p, bits < threshold)


@pytest.mark.parametrize("path", BUILTIN_SCENARIOS, ids=lambda p: p.stem)
def test_fused_kernel_gives_the_same_tables_on_builtin_scenarios(path):
    scenario = load_scenario(path)
    runs = [run(scenario, instances=70_000, pass_k_sample=3_000, kernel=k) for k in ("numpy", "fused")]
    assert_same_tables(*runs)


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(workflows())
def test_fused_kernel_gives_the_same_tables_on_random_workflows(data):
    scenario = scenario_from_dict(data)
    runs = [run(scenario, instances=10_000, pass_k_sample=2_000, kernel=k) for k in ("numpy", "fused")]
    assert_same_tables(*runs)


@pytest.mark.parametrize("distinct", [1, 5, DISTINCT, DISTINCT + 1, 5_000])
def test_unique_is_np_unique(distinct):
    """By comparison (a few distinct values) or by sorting (more), the same arrays as np.unique."""
    rng = stream(19, "tests/unique", distinct)
    values = rng.choice(rng.random(distinct) * 1e4, 20_000)
    ours, reference = _unique(values), np.unique(values, return_inverse=True, return_counts=True)
    for a, b in zip(ours, reference, strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b.ravel())
    assert all(len(a) == 0 for a in _unique(values[:0]))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(workflows())
def test_compiled_tally_counts_what_tally_add_counts_on_random_workflows(data):
    numpy, fused = tallies_of_both(scenario_from_dict(data), ((0, 0, 20_000), (1, 7, 300)))
    for name in numpy:
        assert_same_tally(fused[name], numpy[name])


def test_fused_results_do_not_depend_on_chunk_size_or_workers():
    scenario = load_scenario(BUILTIN_SCENARIOS[0])
    reference = run(scenario, instances=150_000, pass_k_sample=70_000, chunk_size=150_000, kernel="fused")
    for size, workers in ((65_536, 1), (10_007, 1), (40_000, 2)):
        other = run(scenario, instances=150_000, pass_k_sample=70_000, chunk_size=size, workers=workers,
                    kernel="fused")
        assert_same_tables(other, reference)


def test_kernel_names_and_engines_are_checked():
    scenario = load_scenario(BUILTIN_SCENARIOS[0])
    with pytest.raises(CascadeError, match="kernel is one of numpy, fused"):
        run(scenario, instances=100, kernel="numba")
    with pytest.raises(CascadeError, match="only applies to the monte_carlo engine"):
        run(scenario, engine="analytic", kernel="fused")


def test_cascade_run_kernel_fused_writes_the_same_folder(tmp_path):
    """Every file of the run folder, manifest included, byte for byte; --kernel with another engine: exit 2."""
    folders = {}
    for kernel in ("numpy", "fused"):
        folders[kernel] = tmp_path / kernel
        result = CliRunner().invoke(app, ["run", str(BUILTIN_SCENARIOS[0]), "-n", "70000", "--kernel", kernel,
                                          "--out", str(folders[kernel]), "-q"])
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in folders["numpy"].iterdir())
    assert names == sorted(p.name for p in folders["fused"].iterdir())
    for name in names:
        assert (folders["numpy"] / name).read_bytes() == (folders["fused"] / name).read_bytes(), name
    result = CliRunner().invoke(app, ["run", str(BUILTIN_SCENARIOS[0]), "--engine", "analytic", "--kernel",
                                      "fused", "--out", str(tmp_path / "analytic")])
    assert result.exit_code == 2 and "only applies to the monte_carlo engine" in result.output
