"""The package's shape, read from the code with ast: the import graph (imports inside functions
count) has no cycle inside biosig/, every folder imports only what its __init__ docstring allows
("May import: ..."), with the leaves and shims biosig/__init__.py names; argparse lives only in
the commands (cli/) and the options tables; no module and no function grows past what a reader
takes in at once."""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "biosig"


def modules():
    """{module name: (path, is_package)} for every .py file under biosig/."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


MODULES = modules()


def imported(name):
    """The biosig modules that module `name` imports, anywhere in its code."""
    path, package = MODULES[name]
    here = name.split(".") if package else name.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            base = ".".join(base + (node.module.split(".") if node.module else []))
            for a in node.names:        # `from biosig.data import parquet` imports the module biosig.data.parquet
                targets.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {t for t in targets if t in MODULES and t != name}


GRAPH = {name: imported(name) for name in MODULES}


def package_doc(name):
    return ast.get_docstring(ast.parse(MODULES[name][0].read_text())) or ""


def listed(label):
    """The names after `label:` in biosig/__init__.py's docstring, up to the first colon or period."""
    text = re.search(rf"^\s*{label}\s+(.*?)[:.]", package_doc("biosig"), re.M | re.S).group(1)
    return {w.strip() for w in text.split(",")}


LEAVES = {f"biosig.{n}" for n in listed("leaves")}
SHIMS = {f"biosig.{n}" for n in listed("Shims:")}


def owner(name):
    """A module's layer: its folder (biosig.training), a leaf, or a shim."""
    parts = name.split(".")
    if name in LEAVES or name in SHIMS or name == "biosig":
        return name
    return ".".join(parts[:2])


def allowed(folder):
    """What a folder's docstring allows it to import: itself, the leaves and the named folders."""
    rule = re.search(r"^May import: (.*?)[.(]", package_doc(folder), re.M)
    assert rule, f"{folder}/__init__.py's docstring has no 'May import: ...' line"
    names = {w.strip() for w in rule.group(1).split(",")}
    if "everything" in names:
        return None
    out = {folder, *LEAVES}
    out.update(f"biosig.{n}" for n in names - {"leaves"})
    return out


def test_the_leaves_and_shims_named_in_the_package_docstring_exist():
    assert LEAVES and SHIMS
    for name in LEAVES | SHIMS:
        assert name in MODULES and not MODULES[name][1], name


def test_no_import_cycle_inside_the_package():
    """Depth-first search over GRAPH; a back edge is a cycle (named in the failure)."""
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_every_import_points_where_its_folder_allows():
    bad = []
    for name, targets in sorted(GRAPH.items()):
        if name in SHIMS or name.endswith("__main__") or name == "biosig":
            continue                               # entry points: they call a command
        if name in LEAVES:
            ok = LEAVES
        else:
            ok = allowed(owner(name))
            if ok is None:
                continue
        bad += [f"{name} -> {t}" for t in sorted(targets) if owner(t) not in ok and t not in ok and t != "biosig"]
    assert not bad, "imports a folder's docstring does not allow:\n" + "\n".join(bad)


def test_nothing_inside_the_package_imports_a_shim():
    """The shims keep old names for users; the package itself imports the real modules."""
    bad = [f"{name} -> {t}" for name, targets in GRAPH.items() for t in targets
           if t in SHIMS and not name.endswith("__main__")]
    assert not bad, bad


@pytest.mark.parametrize("folder", sorted(n for n, (p, package) in MODULES.items() if package and n != "biosig"))
def test_every_folder_says_what_lives_there_and_what_it_may_import(folder):
    doc = package_doc(folder)
    assert len(doc.split()) >= 20, f"{folder}: a paragraph on what lives there"
    allowed(folder)


# train.py's and sweep.py's options tables: what kind each flag is, read by the run and the sweep
OPTION_TABLES = {"biosig.training.options", "biosig.sweep.flags"}


def test_argparse_only_in_the_commands_and_the_options_tables():
    """A library module takes values, not a parser (biosig.errors defines the parser class and the
    number types every command uses)."""
    bad = [name for name, (path, _) in MODULES.items()
           if re.search(r"^\s*(import argparse|from argparse import)", path.read_text(), re.M)
           and not name.startswith("biosig.cli") and name not in OPTION_TABLES | {"biosig.errors", "biosig.declare"}]
    assert not bad, bad


def test_no_module_over_350_lines_and_no_function_over_80():
    """Argument parser tables (a function that only adds flags) may be longer."""
    long_modules = [f"{n}: {len(p.read_text().splitlines())}" for n, (p, _) in MODULES.items()
                    if len(p.read_text().splitlines()) > 350]
    long_functions = []
    for name, (path, _) in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                table = "parser" in node.name or re.fullmatch(r"add_\w*flags", node.name)
                if length > 80 and not table:
                    long_functions.append(f"{name}.{node.name}: {length}")
    assert not long_modules and not long_functions, (long_modules, long_functions)
