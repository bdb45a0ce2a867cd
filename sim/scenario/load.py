"""Load scenario files: YAML with line tracking -> built-in workflow expansion -> strict model -> checks.

Every problem found on the way is reported together, each as `file:line: field.path: what is wrong`.
"""

from __future__ import annotations

import copy
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.core.errors import CascadeError, Problem, ScenarioError
from sim.core.yaml_source import Path_, SourceMap, read_yaml_file
from sim.scenario.checks import check_scenario, did_you_mean
from sim.scenario.distributions import take_distributions
from sim.scenario.model import Scenario
from sim.scenario.overrides import apply_set, base_dict, matching_set_key
from sim.scenario.sweep import check_sweep, listed_values

BUILTIN_DIR = Path(__file__).parent / "workflows"


def builtin_workflows() -> list[str]:
    """Names of the workflows packaged with cascadesim."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def load_scenario(path: str | Path, measure: bool = True) -> Scenario:
    """Read, expand and validate a scenario file (variants included); raises ScenarioError on any problem.

    A measured retriever given a corpus instead of a profile is measured on first use (then cached); with
    `measure=False` nothing is embedded: a profile not cached yet leaves its rates empty and says so in
    `measured_with['pending']` (what `cascade validate` reports)."""
    raw, source = read_yaml_file(path)
    return scenario_from_dict(raw, source, base_dir=Path(path).resolve().parent, measure=measure)


def scenario_from_dict(raw: Any, source: SourceMap | None = None, base_dir: Path | None = None,
                       measure: bool = True) -> Scenario:
    """Validate a scenario given as plain data (as parsed from YAML); relative profile paths are resolved
    against `base_dir` (the scenario file's folder; default: the current folder)."""
    source = source or SourceMap()
    base_dir = base_dir or Path.cwd()
    if not isinstance(raw, dict):
        raise ScenarioError([source.problem((), "a scenario is a mapping of keys (schema_version, name, seed, ...)"
                                                 f", not {type(raw).__name__}")])
    # Top-level `x-...` keys hold YAML anchors that steps merge (`<<: *defaults`); they are not part of the model.
    raw = {k: v for k, v in raw.items() if not (isinstance(k, str) and k.startswith("x-"))}
    raw = _expand_builtin(raw, source)
    raw = _absolute_profile_paths(raw, base_dir, source)
    scenario = _validate(raw, source, measure)
    # Variants are validated now, so that a bad override is reported at load time with its line.
    problems: list[Problem] = []
    base = base_dict(scenario)
    for i, variant in enumerate(scenario.variants):
        try:
            _validate(apply_set(base, variant.set, ("variants", i, "set"), source), SourceMap(), measure)
        except ScenarioError as exc:
            for p in exc.problems:
                key = matching_set_key(variant.set, p.path)
                where = ("variants", i, "set", key) if key else ("variants", i, "set")
                problems.append(source.problem(where, f"in variant '{variant.name}': {p.path}: {p.message}"))
    if scenario.sweep is not None:
        problems += _sweep_problems(scenario, base, source, measure)
    if problems:
        raise ScenarioError(problems)
    return scenario


def _sweep_problems(scenario: Scenario, base: dict[str, Any], source: SourceMap, measure: bool) -> list[Problem]:
    """The sweep's shape, then each parameter's values applied as a variant's `set` would apply them (a grid's
    two ends, every listed value, a range's two ends), each problem at the parameter's line."""
    sweep = scenario.sweep
    problems = [source.problem(("sweep", *path), message) for path, message in check_sweep(sweep)]
    base = {k: v for k, v in base.items() if k != "sweep"}
    for path, parameter in sweep.parameters.items():
        shape = next(k for k in ("grid", "values", "range") if getattr(parameter, k) is not None)
        values = listed_values(parameter)
        tried = values[:1] + values[-1:] if shape == "grid" else values if shape == "values" else list(parameter.range)
        for value in dict.fromkeys(tried):  # each distinct value once, in order
            try:
                _validate(apply_set(base, {path: value}, ("sweep", "parameters"), source), SourceMap(), measure)
            except ScenarioError as exc:
                problems += [p if p.line else source.problem(("sweep", "parameters", path, shape),
                                                             f"{path} = {value!r}: {p.path}: {p.message}")
                             for p in exc.problems]
                break
    return problems


def resolve_variants(scenario: Scenario) -> dict[str, Scenario]:
    """`{'base': scenario, name: scenario with the variant's overrides, ...}` in declaration order."""
    base = base_dict(scenario)
    out = {"base": scenario.model_copy(update={"variants": []})}
    for v in scenario.variants:
        out[v.name] = _validate(apply_set(base, v.set, (), SourceMap()), SourceMap())
    return out


def _expand_builtin(raw: dict[str, Any], source: SourceMap) -> dict[str, Any]:
    workflow = raw.get("workflow")
    if not isinstance(workflow, dict) or "builtin" not in workflow:
        if isinstance(workflow, dict) and workflow.get("set"):
            raise ScenarioError([source.problem(("workflow", "set"), "'set' changes a built-in workflow; with "
                                                "inline steps, edit the steps themselves")])
        return raw
    name = workflow["builtin"]
    if name not in builtin_workflows():
        raise ScenarioError([source.problem(("workflow", "builtin"), f"unknown built-in workflow '{name}'"
                                            f"{did_you_mean(str(name), builtin_workflows())}")])
    if "steps" in workflow:
        raise ScenarioError([source.problem(("workflow", "steps"), "give either builtin or steps, not both")])
    packaged, packaged_source = read_yaml_file(BUILTIN_DIR / f"{name}.yaml")
    source.graft(("workflow",), packaged_source)
    overrides = workflow.get("set") or {}
    if not isinstance(overrides, dict):
        raise ScenarioError([source.problem(("workflow", "set"), "set is a mapping of dotted paths to values")])
    expanded = apply_set(packaged, overrides, ("workflow", "set"), source)
    rest = {k: v for k, v in workflow.items() if k not in ("builtin", "set")}
    out = dict(raw)
    out["workflow"] = {"builtin": name, **expanded, **rest}
    return out


def _absolute_profile_paths(raw: dict[str, Any], base_dir: Path, source: SourceMap) -> dict[str, Any]:
    """Make profile paths absolute (in retrievers and in variant overrides) and the agent block's corpus and
    case file paths too (they must exist), so the scenario can be resolved and re-run from anywhere; and refuse
    rates written on a measured retriever."""
    out = copy.deepcopy(raw)
    problems = []
    for name, r in _mapping(out.get("retrievers")).items():
        if isinstance(r, dict) and r.get("kind") == "measured":
            for key in ("rates", "counts"):
                if key in r:
                    problems.append(source.problem(("retrievers", name, key), f"a measured retriever takes its "
                                                   f"{key} from its profile; remove them (or use kind: injected)"))
            if ("profile" in r) == ("corpus" in r):
                problems.append(source.problem(("retrievers", name), "a measured retriever needs either a "
                                               "profile (a file from `cascade measure`) or a corpus to measure"))
            if isinstance(r.get("profile"), str):
                r["profile"] = str((base_dir / r["profile"]).resolve())
            if isinstance(r.get("corpus"), str) and (base_dir / r["corpus"]).exists():
                r["corpus"] = str((base_dir / r["corpus"]).resolve())
    agent = _mapping(out.get("agent"))
    for key, holder in (("cases", agent), ("path", _mapping(agent.get("corpus")))):
        if isinstance(holder.get(key), str) and holder[key]:
            where = ("agent", key) if key == "cases" else ("agent", "corpus", key)
            try:
                holder[key] = str((base_dir / holder[key]).resolve())
                found = Path(holder[key]).exists()
            except (OSError, ValueError) as exc:  # a name too long, a character no file system takes
                problems.append(source.problem(where, f"not a usable path ({exc})"))
                continue
            if not found:
                problems.append(source.problem(where, f"no such file or folder: {holder[key]} (paths are relative "
                                                      "to the scenario file)"))
    for v in out.get("variants") if isinstance(out.get("variants"), list) else []:
        for key, value in _mapping(v.get("set") if isinstance(v, dict) else None).items():
            if key.endswith(".profile") and isinstance(value, str):
                v["set"][key] = str((base_dir / value).resolve())
    if problems:
        raise ScenarioError(problems)
    return out


def _mapping(value: Any) -> dict[str, Any]:
    """`value` when it is a mapping, else {} (the strict model then reports the wrong type with its line)."""
    return value if isinstance(value, dict) else {}


def _with_profiles(raw: dict[str, Any], source: SourceMap, measure: bool) -> dict[str, Any]:
    """Fill each measured retriever's rates and provenance from its profile file."""
    from sim.retrieval.profile import read_profile

    out = copy.deepcopy(raw)
    for name, r in _mapping(out.get("retrievers")).items():
        if not isinstance(r, dict) or r.get("kind") != "measured":
            continue
        if isinstance(r.get("corpus"), str) and not r.get("profile"):
            from sim.retrieval.measure import cached_profile, cached_profile_path

            settings = (r["corpus"], r.get("model"), int(r.get("probes", 300)), int(r.get("k", 5)))
            try:
                path = cached_profile_path(*settings)
                if not path.is_file():
                    if not measure:
                        r["measured_with"] = {"pending": f"will be measured on first run (corpus '{r['corpus']}', "
                                                         f"model {r.get('model') or 'the packaged all-MiniLM-L6-v2'})",
                                              "profile": str(path)}
                        continue
                    path = cached_profile(*settings)
            except (CascadeError, ValueError) as exc:
                raise ScenarioError([source.problem(("retrievers", name, "corpus"), str(exc))]) from None
            profile = read_profile(path)
            label = str(path)
        elif isinstance(r.get("profile"), str):
            try:
                profile = read_profile(r["profile"])
            except (CascadeError, ScenarioError) as exc:
                raise ScenarioError([source.problem(("retrievers", name, "profile"), str(exc))]) from None
            label = r["profile"]
        else:
            continue
        r["rates"] = {t: float(v) for t, v in profile["rates"].items() if float(v) > 0}
        counts = profile.get("counts")
        r["counts"] = ({k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0}
                       if isinstance(counts, dict) else {})
        r["measured_with"] = {"profile": label, "model": profile.get("model", {}).get("name"),
                              "corpus": profile.get("corpus", {}).get("name"),
                              "corpus_fingerprint": profile.get("corpus", {}).get("fingerprint"),
                              "created": profile.get("created")}
    return out


def _validate(raw: dict[str, Any], source: SourceMap, measure: bool = True) -> Scenario:
    raw, problems = take_distributions(_with_profiles(raw, source, measure), source)
    if problems:
        raise ScenarioError(problems)
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ScenarioError([_problem_from_pydantic(e, raw, source) for e in exc.errors()]) from None
    located = check_scenario(scenario)
    if located:
        raise ScenarioError([_in_users_file(source.problem(path, message), source) for path, message in located])
    return scenario


def _in_users_file(problem: Problem, source: SourceMap) -> Problem:
    """A problem located in a packaged workflow is reported at the user's `builtin:` line (the file they can
    edit), with the packaged place in the message."""
    builtin_at = source.lines.get(("workflow", "builtin"))
    if builtin_at is None or problem.file == builtin_at[0] or Path(problem.file).parent != BUILTIN_DIR:
        return problem
    return Problem(builtin_at[0], builtin_at[1], problem.path,
                   f"{problem.message} (in the built-in workflow: {Path(problem.file).name}:{problem.line})")


def _problem_from_pydantic(err: dict[str, Any], raw: Any, source: SourceMap) -> Problem:
    loc = _data_path(err["loc"], raw)
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        allowed = _fields_at(err["loc"][:-1])
        message = f"unknown key '{key}'{did_you_mean(key, allowed)}"
    elif kind == "missing":
        message = f"missing required field '{loc[-1]}'"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        message = "kind must be one of: retrieve, decide, verify, act"
        loc = loc + ("kind",)
    else:
        shown = err.get("input")
        message = f"{msg} (got {shown!r})" if not isinstance(shown, dict | list) else msg
    return source.problem(loc, message)


def _data_path(loc: tuple, raw: Any) -> Path_:
    """Pydantic's error location without the discriminator tags it inserts (e.g. 'decide')."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part not in node and node.get("kind") == part:
            continue
        out.append(part)
        node = node.get(part) if isinstance(node, dict) else (
            node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None)
    return tuple(out)


def _fields_at(loc: tuple) -> list[str]:
    """Field names of the model that sits at a pydantic error location (for 'did you mean')."""
    current: Any = Scenario
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return []
    model = _unwrap(current, None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(tp: Any, part: Any) -> Any:
    """Follow one location step through models, containers, Annotated and discriminated unions."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0], part)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        for m in members:  # discriminated union: the tag names the member
            if isinstance(m, type) and issubclass(m, BaseModel) and "kind" in m.model_fields:
                literal = typing.get_args(m.model_fields["kind"].annotation)
                if part in literal:
                    return m
        return _unwrap(members[0], part) if len(members) == 1 else None
    if part is None:
        return tp
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field else None
    if origin in (list, dict):
        return typing.get_args(tp)[-1]
    return None


def dump_scenario_yaml(scenario: Scenario) -> str:
    """The fully resolved scenario (built-in steps inline) as YAML text that loads back to the same scenario."""
    import yaml

    data = {**base_dict(scenario), "variants": [v.model_dump(mode="json") for v in scenario.variants]}
    if data.get("agent") is None:
        data.pop("agent", None)
    if scenario.sweep is not None:  # each swept parameter shows the one shape it was given
        data["sweep"] = scenario.sweep.model_dump(mode="json", exclude_none=True)
    for r in data["retrievers"].values():
        if r["kind"] == "measured":  # rates are re-read from the profile when the file is loaded
            r.pop("rates", None)
            r.pop("measured_with", None)
            r.pop("counts", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


__all__ = ["load_scenario", "scenario_from_dict", "resolve_variants", "builtin_workflows", "dump_scenario_yaml"]
