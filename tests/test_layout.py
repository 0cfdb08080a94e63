"""The package's layout rules: one-way imports, no private names across modules, no silenced warnings,
no pointers to files outside the repository, one vocabulary in public signatures."""

import ast
import inspect
import re
from pathlib import Path

import backpain_outcomes as bpo

PKG = Path(bpo.__file__).resolve().parent
MODULES = sorted(p for p in PKG.rglob("*.py"))


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """(module imported, names) for every relative import inside the package, at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path).split(".")
    package = me if path.name == "__init__.py" else me[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            yield target, [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("backpain_outcomes"):
            yield node.module, [a.name for a in node.names]


def test_no_module_imports_a_private_name_of_another():
    offenders = []
    for path in MODULES:
        for target, names in _imports(path):
            for name in names:
                if name.startswith("_") and not name.startswith("__"):
                    offenders.append(f"{_module_name(path)} imports {target}.{name}")
    assert not offenders, offenders


def test_import_graph_has_no_cycle():
    graph = {}
    known = {_module_name(p) for p in MODULES}
    for path in MODULES:
        me = _module_name(path)
        if me == "backpain_outcomes":
            continue  # the package's __init__ re-exports; it is the root, not a participant
        deps = set()
        for target, names in _imports(path):
            for cand in [f"{target}.{n}" for n in names] + [target]:
                if cand in known and cand != me and cand != "backpain_outcomes":
                    deps.add(cand)
                    break
        graph[me] = deps
    state, cycle = {}, []

    def visit(node, stack):
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                cycle.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif state.get(dep) is None:
                visit(dep, stack + [dep])
        state[node] = 2
    for node in graph:
        if state.get(node) is None:
            visit(node, [node])
    assert not cycle, cycle


def test_no_warning_is_silenced_in_the_package():
    pattern = re.compile(r"simplefilter\(\s*[\"']ignore|filterwarnings\(\s*[\"']ignore")
    hits = [str(p.relative_to(PKG)) for p in MODULES if pattern.search(p.read_text(encoding="utf-8"))]
    assert not hits, hits


def test_nothing_points_outside_the_repository():
    pattern = re.compile(r"DESIGN\.md|anchors\.md|\banchors [A-F]\d?\b|shared/", re.IGNORECASE)
    files = [*MODULES, *PKG.rglob("*.j2")]
    hits = [str(p.relative_to(PKG)) for p in files if pattern.search(p.read_text(encoding="utf-8"))]
    assert not hits, hits


OLD_NAMES = {"by_day", "at_day", "max_day", "data", "group", "min_cell", "min_episodes", "min_scores",
             "min_points", "min_measurements", "min_at_risk"}
ANALYSES = ["time_to_resolution", "resolution_curve", "test_resolution_claim", "evaluate_seed_claims",
            "fit_recovery_curves", "fit_episode_curves", "fit_mixed_model", "compare_modalities",
            "fit_trajectories", "clinic_report"]


def test_public_signatures_use_the_one_vocabulary():
    for name in ANALYSES:
        params = list(inspect.signature(getattr(bpo, name)).parameters)
        assert params[0] == "study", (name, params)
        assert not OLD_NAMES & set(params), (name, OLD_NAMES & set(params))
        for p in params:
            if p.startswith("min_"):
                assert p == "min_n", (name, p)
        if "origin" in params:
            assert inspect.signature(getattr(bpo, name)).parameters["origin"].default == "onset", name
        if "reference" in params:
            assert inspect.signature(getattr(bpo, name)).parameters["reference"].default == "untreated", name


def test_warnings_point_at_the_users_line():
    """A warning from deep inside an analysis (behind single dispatch) names the caller's file and line."""
    import sys
    import warnings

    study = bpo.simulate_study(300, seed=3)[0]  # two modalities' decay is not identified: ConvergenceWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bpo.fit_recovery_curves(study, by="modality", progress=False); line = sys._getframe().f_lineno  # noqa: E702
    ours = [w for w in caught if issubclass(w.category, bpo.StatisticalWarning)]
    assert ours
    assert {(Path(w.filename).name, w.lineno) for w in ours} == {(Path(__file__).name, line)}


def test_every_warning_goes_through_the_one_warn_function():
    """exceptions.warn attributes a warning to the user's line; a direct warnings.warn with a fixed stacklevel
    points into the package as soon as a layer (single dispatch) is added."""
    package = Path(bpo.__file__).parent
    direct = [p.name for p in package.glob("*.py") if p.name != "exceptions.py" and "warnings.warn(" in p.read_text()]
    assert direct == []
