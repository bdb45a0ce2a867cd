"""Architecture figures for the `sim` and `agents` packages of a source tree, for before/after comparisons.

Measures, statically (ast + grimp; the project's modules are never imported):
  1. modules per package (.py files directly in each package, __init__.py excluded) and their total;
  2. the 10 longest functions/methods (end_lineno - lineno + 1);
  3. import cycles: strongly connected components (size > 1) of the module import graph, of the graph
     collapsed to packages and to the first two name components, and every `sim.*` -> `agents.*` import.
     grimp counts every import in a module, including those inside functions and TYPE_CHECKING blocks.

    python bench/architecture.py [ROOT]     # ROOT defaults to the repository root (parent of bench/)
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import grimp
import networkx as nx

TOP = ("sim", "agents")


def python_files(root: Path) -> list[Path]:
    """All .py files under ROOT/sim and ROOT/agents, outside __pycache__."""
    return sorted(p for top in TOP for p in (root / top).rglob("*.py") if "__pycache__" not in p.parts)


def is_package(root: Path, module: str) -> bool:
    """Whether a dotted module name is a regular package (a folder with __init__.py) under ROOT."""
    return (root.joinpath(*module.split(".")) / "__init__.py").is_file()


def modules_per_package(root: Path) -> None:
    """Print the number of modules directly in each package, and the total."""
    print("1. Modules per package (excluding __init__.py)")
    folders = sorted({p.parent for p in python_files(root)} | {root / top for top in TOP})
    total = 0
    for folder in folders:
        if folder.name in TOP and folder.parent == root or (folder / "__init__.py").is_file():
            count = sum(1 for p in folder.glob("*.py") if p.name != "__init__.py")
            total += count
            print(f"   {'.'.join(folder.relative_to(root).parts):<32} {count:>4}")
    print(f"   {'total':<32} {total:>4}\n")


def functions(root: Path) -> list[tuple[int, str, str, int, int]]:
    """Every function/method as (line count, qualified name, file, first line, last line)."""
    found = []

    def visit(node: ast.AST, prefix: str, rel: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = prefix + child.name
                found.append((child.end_lineno - child.lineno + 1, name, rel, child.lineno, child.end_lineno))
                visit(child, name + ".<locals>.", rel)
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".", rel)
            else:
                visit(child, prefix, rel)

    for path in python_files(root):
        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), "", str(path.relative_to(root)))
    return found


def longest_functions(funcs: list[tuple[int, str, str, int, int]], n: int = 10) -> None:
    """Print the n longest functions and the single longest."""
    print(f"2. The {n} longest functions/methods ({len(funcs)} in all)")
    ranked = sorted(funcs, key=lambda f: (-f[0], f[2], f[3]))
    for lines, name, rel, first, _ in ranked[:n]:
        print(f"   {lines:>4}  {name:<48} {rel}:{first}")
    lines, name, rel, first, _ = ranked[0]
    print(f"   longest: {name} ({rel}:{first}), {lines} lines\n")


def load_graph(root: Path) -> grimp.ImportGraph:
    """Build grimp's import graph of ROOT's `sim` and `agents`, checking they resolve to ROOT's copies."""
    sys.path.insert(0, str(root))  # ahead of the editable install's finder, which sits on sys.meta_path
    for top in TOP:
        spec = importlib.util.find_spec(top)
        locations = list(spec.submodule_search_locations or []) if spec else []
        print(f"   {top} resolves to {spec.origin if spec else None}")
        if locations != [str(root / top)]:
            sys.exit(f"error: {top} does not resolve to {root / top} (found {locations})")
    # cache_dir=None: no .grimp_cache folder is written into the working directory.
    return grimp.build_graph(*TOP, include_external_packages=False, cache_dir=None)


def digraph(graph: grimp.ImportGraph, collapse=lambda m: m) -> nx.DiGraph:
    """The import graph as a networkx DiGraph, with modules renamed by `collapse` (self-loops dropped)."""
    g = nx.DiGraph()
    for importer in graph.modules:
        g.add_node(collapse(importer))
        for imported in graph.find_modules_directly_imported_by(importer):
            if collapse(importer) != collapse(imported):
                g.add_edge(collapse(importer), collapse(imported))
    return g


def shortest_cycle(g: nx.DiGraph) -> list[str]:
    """One shortest cycle of a strongly connected graph, as a closed path."""
    path = min((nx.shortest_path(g, v, u) for u, v in sorted(g.edges)), key=len)
    return [*path, path[0]]


def print_cycles(title: str, g: nx.DiGraph) -> None:
    """Print the strongly connected components of size > 1 of a graph, each with a shortest cycle."""
    sccs = sorted((sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1), key=len)[::-1]
    print(f"   {title}: {g.number_of_nodes()} nodes, {g.number_of_edges()} edges, {len(sccs)} SCC(s) > 1")
    for i, scc in enumerate(sccs, 1):
        print(f"     [{i}] {len(scc)} nodes: {', '.join(scc)}")
        print(f"         shortest cycle: {' -> '.join(shortest_cycle(g.subgraph(scc)))}")


def import_cycles(root: Path, funcs: list[tuple[int, str, str, int, int]]) -> None:
    """Print module-, package- and two-component-level import cycles, and every sim -> agents import."""
    print("3. Import cycles (grimp)")
    graph = load_graph(root)

    def package(module: str) -> str:
        parent = module.rpartition(".")[0]
        return module if is_package(root, module) or parent in TOP else parent

    print_cycles("modules", digraph(graph))
    print_cycles("packages", digraph(graph, package))
    print_cycles("first two components", digraph(graph, lambda m: ".".join(m.split(".")[:2])))

    def scope(importer: str, line: int) -> str:
        parts = importer.split(".")
        path = Path(*parts, "__init__.py") if is_package(root, importer) else Path(*parts).with_suffix(".py")
        rel = str(path)
        inside = [f for f in funcs if f[2] == rel and f[3] <= line <= f[4]]
        return f"in {max(inside, key=lambda f: f[3])[1]}()" if inside else "at module level"

    details = sorted(
        (
            d
            for importer in graph.modules
            if importer.split(".")[0] == "sim"
            for imported in graph.find_modules_directly_imported_by(importer)
            if imported.split(".")[0] == "agents"
            for d in graph.get_import_details(importer=importer, imported=imported)
        ),
        key=lambda d: (d["importer"], d["line_number"]),
    )
    print(f"   sim.* -> agents.* imports: {len(details)}")
    for d in details:
        where = f"{d['importer']}:{d['line_number']}"
        print(f"     {where:<26} {scope(d['importer'], d['line_number']):<34} {d['line_contents']}")


def main() -> None:
    """Print the architecture figures for ROOT (argv[1], default: the repository root)."""
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
    if not all((root / top / "__init__.py").is_file() for top in TOP):
        sys.exit(f"error: {root} has no sim/ and agents/ packages")
    print(f"Architecture of {root}\n")
    modules_per_package(root)
    funcs = functions(root)
    longest_functions(funcs)
    import_cycles(root, funcs)


if __name__ == "__main__":
    main()
