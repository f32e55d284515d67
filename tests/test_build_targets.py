"""The Bazel BUILD files checked against the Python sources, statically (`ast`, no Bazel, no TF).

Under Bazel a test's runfiles hold only the files its targets list (.bazelrc sets
`--incompatible_default_to_explicit_init_py`: not even an empty `__init__.py` is made up), so a
missing `deps` entry is an ImportError that plain pytest never shows. For every project `.py`
file this checks that

  (a) exactly one target lists it in `srcs`: a library module its folder's `py_library`, an app
      its `py_binary`, a test file the `pytest_test` of its name (or a support `py_library`);
      `tests/pytest_main.py`, the `main` the `pytest_test` macro adds to every test, is
      `exports_files`;
  (b) the transitive `deps` of that target provide every project module the file imports, at
      any depth (function bodies too), with the `__init__.py` of each package on the way, and
      the `__init__.py` files of the file's own package;
  (c) every label in `deps` and `data` names a target, an exported file or a file of its package;

and, since Bazel refuses them when it loads the BUILD files: no dependency cycle, no dependency
on a target that is not visible to the package, no non-test target depending on a testonly one;
and, as STYLE.md asks, `srcs`, `deps` and `data` in buildifier's order.

Two things the `import` statements alone do not show are followed as well:
- lazy names: a package `__init__.py` that maps public names to modules in a `_PUBLIC_NAMES`
  dict (`keras_bert/__init__.py`) makes `from keras_bert import load_encoder` and
  `keras_bert.load_encoder` imports of the module named there;
- deferred imports (`DEFERRED`): a function-level import that the importing target cannot
  declare because the imported target already depends on it (a cycle Bazel refuses). The
  importer's target leaves it out; every file that uses the importing module's names (imported
  directly, or re-exported by its package's `__init__.py`) must provide it instead.

The `pytest_test` macro (tests/pytest_test.bzl) is read as: `srcs = [<name>.py,
//tests:pytest_main.py]`, `deps = deps + [//tests:test_case]`, testonly.
"""

import ast
import fnmatch
import os
import re
from dataclasses import dataclass, field

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))

# Top-level packages whose imports are project imports.
PROJECT_PACKAGES = ("keras_bert", "training", "export", "benchmarks", "tests")

PYTHON_RULES = ("py_library", "py_binary", "py_test", "pytest_test")
TEST_RULES = ("py_test", "pytest_test")
PYTEST_MAIN = "//tests:pytest_main.py"
PYTEST_SUPPORT = "//tests:test_case"

# (file, module it imports inside a function, why its target cannot declare it).
DEFERRED = [
    (
        "keras_bert/models/model_dir.py",
        "keras_bert.tasks",
        "the model directory reads the task registry, and the tasks build the models",
    ),
]


@dataclass
class Target:
    label: str
    package: str
    kind: str
    build_file: str
    line: int
    srcs: list = field(default_factory=list)  # labels
    deps: list = field(default_factory=list)  # labels
    data: list = field(default_factory=list)  # labels
    testonly: bool = False
    visibility: list = None  # None: the package default
    written: dict = field(default_factory=dict)  # srcs, deps, data as written in the file

    @property
    def where(self):
        return f"{self.build_file}:{self.line} ({self.label})"


def _label(value, package):
    """`value` (as written in `package`'s BUILD file) as `//package:name`."""
    if value.startswith("@"):
        return value
    if value.startswith("//"):
        if ":" in value:
            return value
        return f"{value}:{value.rsplit('/', 1)[-1]}"
    return f"//{package}:{value.lstrip(':')}"


def _split(label):
    package, name = label[2:].split(":", 1)
    return package, name


def _path(package, name):
    return f"{package}/{name}" if package else name


def _glob_match(pattern_parts, path_parts):
    if not pattern_parts:
        return not path_parts
    if pattern_parts[0] == "**":
        return any(
            _glob_match(pattern_parts[1:], path_parts[i:]) for i in range(len(path_parts) + 1)
        )
    return bool(path_parts) and fnmatch.fnmatchcase(path_parts[0], pattern_parts[0]) and (
        _glob_match(pattern_parts[1:], path_parts[1:])
    )


class Workspace:
    """The BUILD files and Python files of a source tree."""

    def __init__(self, root):
        self.root = root
        self.problems_loading = []
        ignored = set()
        bazelignore = os.path.join(root, ".bazelignore")
        if os.path.isfile(bazelignore):
            with open(bazelignore, encoding="utf-8") as ignore_file:
                ignored = {line.strip().rstrip("/") for line in ignore_file if line.strip()}
        self.packages = []  # package paths ("" is the root package)
        self.python_files = []  # repository-relative paths
        for directory, dirnames, filenames in os.walk(root):
            relative = os.path.relpath(directory, root).replace(os.sep, "/")
            relative = "" if relative == "." else relative
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith((".", "bazel-"))
                and _path(relative, d) not in ignored
                # A nested WORKSPACE is another repository (third_party/bazel/*).
                and not os.path.isfile(os.path.join(directory, d, "WORKSPACE"))
            )
            if "BUILD" in filenames or "BUILD.bazel" in filenames:
                self.packages.append(relative)
            self.python_files += sorted(_path(relative, f) for f in filenames if f.endswith(".py"))
        self.targets = {}
        self.exported = {}  # label -> BUILD file of its exports_files
        self.default_visibility = {}
        for package in self.packages:
            self._load_build_file(package)
        self.lazy_names = self._lazy_names()

    # === BUILD files ===

    def package_of(self, path):
        """The package a repository-relative file belongs to (nearest folder with a BUILD)."""
        directory = os.path.dirname(path)
        while True:
            if directory in self.packages:
                return directory
            if not directory:
                return None
            directory = os.path.dirname(directory)

    def _load_build_file(self, package):
        name = "BUILD" if os.path.isfile(self._abs(_path(package, "BUILD"))) else "BUILD.bazel"
        build_file = _path(package, name)
        with open(self._abs(build_file), encoding="utf-8") as f:
            tree = ast.parse(f.read(), build_file)
        for statement in tree.body:
            if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
                continue
            call = statement.value
            rule = call.func.id if isinstance(call.func, ast.Name) else ast.unparse(call.func)
            if rule == "load":
                continue
            try:
                args = [self._evaluate(a, package, build_file) for a in call.args]
                kwargs = {
                    k.arg: self._evaluate(k.value, package, build_file) for k in call.keywords
                }
            except ValueError as error:
                self.problems_loading.append(str(error))
                continue
            where = f"{build_file}:{call.lineno}"
            if rule == "package":
                self.default_visibility[package] = kwargs.get("default_visibility")
            elif rule == "exports_files":
                for exported in (args or [kwargs.get("srcs", [])])[0]:
                    self.exported[_label(exported, package)] = where
            elif "name" in kwargs:
                self._add_target(rule, package, build_file, call.lineno, kwargs)
            else:
                self.problems_loading.append(f"{where}: `{rule}` has no `name`")

    def _add_target(self, rule, package, build_file, line, kwargs):
        name = kwargs["name"]
        target = Target(
            label=f"//{package}:{name}",
            package=package,
            kind=rule,
            build_file=build_file,
            line=line,
            srcs=[_label(s, package) for s in kwargs.get("srcs", [])],
            deps=[_label(d, package) for d in kwargs.get("deps", [])],
            data=[_label(d, package) for d in kwargs.get("data", [])],
            testonly=bool(kwargs.get("testonly", rule in TEST_RULES)),
            visibility=kwargs.get("visibility"),
            written={a: kwargs[a] for a in ("srcs", "deps", "data") if a in kwargs},
        )
        if rule == "pytest_test":
            target.srcs = [f"//{package}:{name}.py", PYTEST_MAIN]
            target.deps = target.deps + [PYTEST_SUPPORT]
        if target.label in self.targets:
            self.problems_loading.append(
                f"{build_file}:{line}: target `{name}` is defined twice in //{package}"
            )
        self.targets[target.label] = target

    def _evaluate(self, node, package, build_file):
        """The value of a BUILD-file expression: literals, `+` and `glob([...])`."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._evaluate(e, package, build_file) for e in node.elts]
        if isinstance(node, ast.Dict):
            return {
                self._evaluate(k, package, build_file): self._evaluate(v, package, build_file)
                for k, v in zip(node.keys, node.values)
            }
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._evaluate(node.left, package, build_file) + self._evaluate(
                node.right, package, build_file
            )
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "glob":
            include = self._evaluate(node.args[0], package, build_file)
            exclude = [
                self._evaluate(k.value, package, build_file)
                for k in node.keywords
                if k.arg == "exclude"
            ]
            return self._glob(package, include, exclude[0] if exclude else [])
        raise ValueError(f"{build_file}:{node.lineno}: cannot evaluate `{ast.unparse(node)}`")

    def _glob(self, package, include, exclude):
        """Files of `package` (not of its subpackages) matching `include` and not `exclude`."""
        matches = []
        top = self._abs(package)
        for directory, dirnames, filenames in os.walk(top):
            relative = os.path.relpath(directory, top).replace(os.sep, "/")
            relative = "" if relative == "." else relative
            dirnames[:] = [
                d for d in dirnames if _path(package, _path(relative, d)) not in self.packages
            ]
            for filename in filenames:
                parts = _path(relative, filename).split("/")
                if any(_glob_match(p.split("/"), parts) for p in include) and not any(
                    _glob_match(p.split("/"), parts) for p in exclude
                ):
                    matches.append("/".join(parts))
        return sorted(matches)

    def _abs(self, path):
        return os.path.join(self.root, *path.split("/")) if path else self.root

    def is_file_label(self, label):
        package, name = _split(label)
        return package in self.packages and os.path.isfile(self._abs(_path(package, name)))

    def label_exists(self, label):
        if label.startswith("@"):
            return True
        package, _ = _split(label)
        if package not in self.packages:
            return False
        return label in self.targets or label in self.exported or self.is_file_label(label)

    def files_of(self, target):
        """Repository-relative paths of the `.py` files in `target`'s srcs."""
        return [_path(*_split(s)) for s in target.srcs if s.startswith("//") and s.endswith(".py")]

    def closure(self, label):
        """Labels of `label` and of everything it depends on through `deps`."""
        seen = set()
        stack = [label]
        while stack:
            current = stack.pop()
            if current in seen or current not in self.targets:
                continue
            seen.add(current)
            stack.extend(self.targets[current].deps)
        return seen

    def provided_files(self, label):
        files = set()
        for dep in self.closure(label):
            files.update(self.files_of(self.targets[dep]))
        return files

    def owners(self, path):
        """Targets listing `path` in `srcs` from its own package, and its exports_files."""
        package = self.package_of(path)
        if package is None:
            return []
        label = f"//{package}:{path[len(package) + 1:] if package else path}"
        owners = [
            t.label
            for t in self.targets.values()
            if t.package == package
            and label in t.srcs
            and not (t.kind == "pytest_test" and label == PYTEST_MAIN)
        ]
        if label in self.exported:
            owners.append(f"exports_files at {self.exported[label]}")
        return owners

    # === Python files ===

    def module_files(self, module):
        """Files Python runs to import `module` (`__init__.py` of each package on the way);
        None when `module` is not a project module."""
        parts = module.split(".")
        files = []
        for i in range(1, len(parts) + 1):
            path = "/".join(parts[:i])
            if os.path.isfile(self._abs(path + "/__init__.py")):
                files.append(path + "/__init__.py")
            elif os.path.isfile(self._abs(path + ".py")):
                files.append(path + ".py")
                return files if i == len(parts) else None
            elif not os.path.isdir(self._abs(path)):
                return None
        return files

    def is_module(self, module):
        return self.module_files(module) is not None

    def module_name(self, path):
        parts = path[: -len(".py")].split("/")
        if parts[-1] == "__init__":
            parts = parts[:-1]
        return ".".join(parts)

    def parse(self, path):
        with open(self._abs(path), encoding="utf-8") as f:
            return ast.parse(f.read(), path)

    def _lazy_names(self):
        """{package: {name: module}} from `_PUBLIC_NAMES` dicts, and {package: {name: module}}
        of the names a package `__init__.py` re-exports from its modules."""
        lazy, reexported = {}, {}
        for path in self.python_files:
            if not path.endswith("/__init__.py") or not path.startswith(PROJECT_PACKAGES):
                continue
            package = self.module_name(path)
            for statement in self.parse(path).body:
                if (
                    isinstance(statement, ast.Assign)
                    and [getattr(t, "id", None) for t in statement.targets] == ["_PUBLIC_NAMES"]
                    and isinstance(statement.value, ast.Dict)
                ):
                    lazy[package] = ast.literal_eval(statement.value)
                elif isinstance(statement, ast.ImportFrom) and statement.level == 0:
                    for alias in statement.names:
                        reexported.setdefault(package, {})[alias.asname or alias.name] = (
                            statement.module
                        )
        self.reexported = reexported
        return lazy

    def imports(self, path):
        """[(module, line, inside a function)] of the project modules `path` uses."""
        with open(self._abs(path), encoding="utf-8") as f:
            source = f.read()
        tree = ast.parse(source, path)
        own = self.module_name(path)
        package = own if path.endswith("__init__.py") else own.rpartition(".")[0]
        found = []
        bound = {}  # local name -> module, for lazy attribute access

        def add(module, node, nested):
            if module.split(".")[0] in PROJECT_PACKAGES:
                found.append((module, node.lineno, nested))

        for node, nested in _import_statements(tree.body, nested=False):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    add(alias.name, node, nested)
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound[alias.name.split(".")[0]] = alias.name.split(".")[0]
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            # `from a import b`: a's files, or only a.b's (which include a's).
            names_only = True
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                if alias.name != "*" and self.is_module(submodule):
                    add(submodule, node, nested)
                    bound[alias.asname or alias.name] = submodule
                    continue
                names_only = False
                if alias.name in self.lazy_names.get(module, {}):
                    add(self.lazy_names[module][alias.name], node, nested)
                elif alias.name in self.reexported.get(module, {}):
                    add(self.reexported[module][alias.name], node, nested)
            if not names_only:
                add(module, node, nested)

        # `keras_bert.load_encoder` after `import keras_bert` (walked only when such a name is
        # written after a dot: walking every expression is what would make this check slow).
        names = {n for m in set(bound.values()) for n in self._names_to_module(m)}
        if names and re.search(r"\.(%s)\b" % "|".join(map(re.escape, sorted(names))), source):
            functions = [
                (n.lineno, n.end_lineno)
                for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            ]
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute):
                    chain = []
                    value = node
                    while isinstance(value, ast.Attribute):
                        chain.append(value.attr)
                        value = value.value
                    if not isinstance(value, ast.Name) or value.id not in bound:
                        continue
                    module = bound[value.id]
                    for attr in reversed(chain):
                        if self.is_module(f"{module}.{attr}"):
                            module = f"{module}.{attr}"
                            continue
                        name_to_module = self._names_to_module(module)
                        if attr in name_to_module:
                            nested = any(a <= node.lineno <= b for a, b in functions)
                            add(name_to_module[attr], node, nested)
                        break
        # A module imported at the top level and in a function counts as top level.
        return sorted(found, key=lambda item: (item[2], item[1]))

    def _names_to_module(self, module):
        return {**self.reexported.get(module, {}), **self.lazy_names.get(module, {})}

    def own_package_files(self, path):
        """The `__init__.py` files Python runs before `path` as a module of its package."""
        files = []
        directory = os.path.dirname(path)
        while directory and os.path.isfile(self._abs(directory + "/__init__.py")):
            files.append(directory + "/__init__.py")
            directory = os.path.dirname(directory)
        return files


def _import_statements(statements, nested):
    """(Import or ImportFrom statement, inside a function) in `statements`, at any depth."""
    for statement in statements:
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            yield statement, nested
            continue
        inner = nested or isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef))
        for name in ("body", "orelse", "finalbody"):
            yield from _import_statements(getattr(statement, name, []), inner)
        for handler in getattr(statement, "handlers", []):
            yield from _import_statements(handler.body, inner)
        for case in getattr(statement, "cases", []):
            yield from _import_statements(case.body, inner)


def _deferred_module(path, module, deferred):
    return any(path == f and (module == m or module.startswith(m + ".")) for f, m, _ in deferred)


def ownership_problems(workspace):
    problems = list(workspace.problems_loading)
    for path in workspace.python_files:
        owners = workspace.owners(path)
        if len(owners) != 1:
            package = workspace.package_of(path)
            build = _path(package, "BUILD") if package is not None else "a BUILD file"
            problems.append(
                f"{path}: in the srcs of {len(owners)} targets"
                + (f" ({', '.join(owners)})" if owners else "")
                + f"; list it in exactly one target of {build}"
            )
    for target in workspace.targets.values():
        for src in target.srcs:
            if not workspace.label_exists(src):
                problems.append(f"{target.where}: srcs `{src}` does not exist")
    return problems


def import_problems(workspace, deferred=DEFERRED):
    problems = []
    owner_of = {}  # path -> the target of its own package that lists it in srcs
    for target in workspace.targets.values():
        for src in target.srcs:
            if _split(src)[0] == target.package and src.endswith(".py"):
                owner_of.setdefault(_path(*_split(src)), target)
    # module whose names owe a deferred import -> (the module it owes, the target deferring it)
    owed_by = {workspace.module_name(f): (m, owner_of.get(f)) for f, m, _ in deferred}
    for path in workspace.python_files:
        target = owner_of.get(path)
        if target is None:
            provided, where = set(), "its exports_files (no deps)"
            if not workspace.owners(path):
                continue  # reported by ownership_problems
        else:
            provided = workspace.provided_files(target.label)
            where = f"the deps of {target.label} ({target.build_file})"
        needs = {}  # module -> the first line that needs it
        for module, line, nested in workspace.imports(path):
            if nested and _deferred_module(path, module, deferred):
                continue
            needs.setdefault(module, line)
            if module in owed_by and owed_by[module][1] is not target:
                needs.setdefault(owed_by[module][0], line)
        for module, line in needs.items():
            files = workspace.module_files(module)
            if files is None:
                problems.append(f"{path}:{line}: imports `{module}`, which is not a project module")
                continue
            missing = [f for f in files if f not in provided]
            if missing:
                problems.append(
                    f"{path}:{line}: imports `{module}`, but {where} do not provide "
                    f"{', '.join(missing)}{_hint(workspace, missing[-1])}"
                )
        missing = [f for f in workspace.own_package_files(path) if f not in provided]
        if missing:
            problems.append(
                f"{path}: its package needs {', '.join(missing)}, which {where} do not "
                f"provide{_hint(workspace, missing[0])}"
            )
    return sorted(set(problems))


def _hint(workspace, path):
    """Which target to add to the deps for `path`."""
    owners = [o for o in workspace.owners(path) if o.startswith("//")]
    return f" (add `{_short(owners[0])}`)" if len(owners) == 1 else ""


def _short(label):
    package, name = _split(label)
    return f"//{package}" if package.rsplit("/", 1)[-1] == name else label


def _sort_key(value):
    """buildifier's order: `:local` labels and files, then `//absolute`, then `@external`;
    by package, then name (`//a`, `//a:b`, `//a/c`)."""
    phase = 2 if value.startswith("@") else 1 if value.startswith("//") else 0
    package, _, name = value.partition(":") if phase else ("", "", value.lstrip(":"))
    return phase, package, name


def _visible(workspace, target, package):
    if target.package == package:
        return True
    visibility = target.visibility
    if visibility is None:
        visibility = workspace.default_visibility.get(target.package) or []
    for entry in visibility:
        if entry == "//visibility:public":
            return True
        entry_package, entry_name = _split(entry)
        if entry_name == "__pkg__" and entry_package == package:
            return True
        if entry_name == "__subpackages__" and (
            package == entry_package or package.startswith(entry_package + "/") or not entry_package
        ):
            return True
    return False


def label_problems(workspace):
    problems = []
    for target in workspace.targets.values():
        for attribute in ("deps", "data"):
            for label in getattr(target, attribute):
                if not workspace.label_exists(label):
                    problems.append(f"{target.where}: {attribute} `{label}` does not exist")
                    continue
                dep = workspace.targets.get(label)
                if dep is None:
                    if attribute == "deps":
                        problems.append(f"{target.where}: deps `{label}` is a file, not a target")
                    continue
                if attribute == "deps" and dep.kind not in PYTHON_RULES:
                    problems.append(f"{target.where}: deps `{label}` is a {dep.kind}, not Python")
                if not _visible(workspace, dep, target.package):
                    problems.append(f"{target.where}: {attribute} `{label}` is not visible to it")
                if dep.testonly and not target.testonly:
                    problems.append(
                        f"{target.where}: {attribute} `{label}` is testonly, "
                        f"{target.label} is not"
                    )
            labels = getattr(target, attribute)
            if len(set(labels)) != len(labels):
                problems.append(f"{target.where}: {attribute} lists a label twice")
        for attribute in ("srcs", "deps", "data"):
            written = target.written.get(attribute, [])
            if written != sorted(written, key=_sort_key):
                problems.append(
                    f"{target.where}: {attribute} not in order; write "
                    + repr(sorted(written, key=_sort_key)).replace("'", '"')
                )
    return problems


def cycle_problems(workspace):
    problems, state = [], {}

    def visit(label, path):
        state[label] = "open"
        for dep in workspace.targets[label].deps:
            if dep not in workspace.targets:
                continue
            if state.get(dep) == "open":
                cycle = path[path.index(dep):] + [dep]
                problems.append("dependency cycle: " + " -> ".join(cycle))
            elif dep not in state:
                visit(dep, path + [dep])
        state[label] = "done"

    for label in sorted(workspace.targets):
        if label not in state:
            visit(label, [label])
    return problems


def deferred_problems(workspace, deferred=DEFERRED):
    """Each DEFERRED entry is still a function-level import that would close a cycle."""
    problems = []
    for path, module, _ in deferred:
        owners = workspace.owners(path)
        imported = [n for m, _, n in workspace.imports(path) if m == module]
        if not imported or any(not nested for nested in imported):
            problems.append(f"DEFERRED: {path} no longer imports `{module}` inside a function only")
            continue
        module_owners = workspace.owners(workspace.module_files(module)[-1])
        if len(owners) == 1 and len(module_owners) == 1:
            if owners[0] not in workspace.closure(module_owners[0]):
                problems.append(
                    f"DEFERRED: {module_owners[0]} does not depend on {owners[0]}: add "
                    f"`{module_owners[0]}` to the deps of {owners[0]} and drop the entry"
                )
    return problems


# === The repository ===


@pytest.fixture(scope="module")
def workspace():
    return Workspace(ROOT)


def _report(problems):
    return f"{len(problems)} problem(s):\n" + "\n".join(problems)


def test_every_python_file_is_in_one_target(workspace):
    problems = ownership_problems(workspace)
    assert not problems, _report(problems)


def test_every_project_import_is_in_the_deps(workspace):
    problems = import_problems(workspace)
    assert not problems, _report(problems)


def test_every_label_exists_and_may_be_used(workspace):
    problems = label_problems(workspace) + cycle_problems(workspace)
    assert not problems, _report(problems)


def test_deferred_imports_are_still_needed(workspace):
    problems = deferred_problems(workspace)
    assert not problems, _report(problems)


def test_the_checker_sees_the_whole_tree(workspace):
    assert "keras_bert/inputs.py" in workspace.python_files
    assert "//keras_bert:inputs" in workspace.targets
    assert not any(p.startswith((".venv/", "third_party/")) for p in workspace.python_files)


# === The checker on small made-up trees ===


def _tree(tmp_path, files):
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return Workspace(str(tmp_path))


def test_the_checker_finds_a_missing_dep_at_any_depth(tmp_path):
    workspace = _tree(
        tmp_path,
        {
            "keras_bert/BUILD": 'py_library(name = "keras_bert", srcs = ["__init__.py", "a.py"])\n'
            'py_library(name = "b", srcs = ["b.py"], deps = [":keras_bert"])\n',
            "keras_bert/__init__.py": "",
            "keras_bert/a.py": "def f():\n    from . import b\n",
            "keras_bert/b.py": "",
        },
    )
    problems = import_problems(workspace, deferred=[])
    assert len(problems) == 1 and "keras_bert/a.py:2: imports `keras_bert.b`" in problems[0]
    assert problems[0].endswith("(add `//keras_bert:b`)")


def test_the_checker_finds_unowned_files_missing_labels_and_cycles(tmp_path):
    workspace = _tree(
        tmp_path,
        {
            "training/BUILD": 'py_library(name = "a", srcs = ["a.py"], deps = [":b", ":gone"])\n'
            'py_library(name = "b", srcs = ["a.py"], deps = [":a"])\n',
            "training/a.py": "",
            "training/c.py": "",
        },
    )
    ownership = ownership_problems(workspace)
    assert any(p.startswith("training/a.py: in the srcs of 2 targets") for p in ownership)
    assert any(p.startswith("training/c.py: in the srcs of 0 targets") for p in ownership)
    assert any("deps `//training:gone` does not exist" in p for p in label_problems(workspace))
    assert cycle_problems(workspace) == [
        "dependency cycle: //training:a -> //training:b -> //training:a"
    ]


def test_the_checker_follows_lazy_names_and_package_inits(tmp_path):
    workspace = _tree(
        tmp_path,
        {
            "keras_bert/BUILD": 'py_library(name = "keras_bert", srcs = ["__init__.py"])\n'
            'py_library(name = "enc", srcs = ["enc.py"], deps = [":keras_bert"])\n',
            "keras_bert/__init__.py": '_PUBLIC_NAMES = {"Enc": "keras_bert.enc"}\n',
            "keras_bert/enc.py": "",
            "tests/BUILD": 'py_library(name = "t", srcs = ["t.py"], deps = ["//keras_bert"])\n',
            "tests/__init__.py": "",
            "tests/t.py": "import keras_bert\nkeras_bert.Enc()\n",
        },
    )
    problems = import_problems(workspace, deferred=[])
    assert any(p.startswith("tests/t.py:2: imports `keras_bert.enc`") for p in problems)
    assert any(p.startswith("tests/t.py: its package needs tests/__init__.py") for p in problems)


def test_the_checker_makes_the_users_of_a_deferred_import_provide_it(tmp_path):
    files = {
        "keras_bert/BUILD": 'py_library(name = "keras_bert", srcs = ["__init__.py"])\n',
        "keras_bert/__init__.py": "",
        "keras_bert/models/BUILD": 'py_library(name = "models", srcs = ["__init__.py", "md.py"],'
        ' deps = ["//keras_bert"], visibility = ["//visibility:public"])\n',
        "keras_bert/models/__init__.py": "from keras_bert.models.md import load\n",
        "keras_bert/models/md.py": "def load():\n    from keras_bert.tasks import TASKS\n",
        "keras_bert/tasks/BUILD": 'py_library(name = "tasks", srcs = ["__init__.py"],'
        ' deps = ["//keras_bert/models"], visibility = ["//visibility:public"])\n',
        "keras_bert/tasks/__init__.py": "import keras_bert.models\nTASKS = {}\n",
        "training/BUILD": 'py_binary(name = "app", srcs = ["app.py"],'
        ' deps = ["//keras_bert/models"])\n',
        "training/app.py": "from keras_bert.models import load\n",
    }
    deferred = [("keras_bert/models/md.py", "keras_bert.tasks", "a cycle")]
    workspace = _tree(tmp_path, files)
    assert deferred_problems(workspace, deferred) == []
    problems = import_problems(workspace, deferred)
    assert len(problems) == 1
    assert problems[0].startswith("training/app.py:1: imports `keras_bert.tasks`")

    # Once the tasks no longer depend on the models, the entry must go.
    files["keras_bert/tasks/BUILD"] = files["keras_bert/tasks/BUILD"].replace(
        "//keras_bert/models", "//keras_bert"
    )
    workspace = _tree(tmp_path, files)
    assert "drop the entry" in deferred_problems(workspace, deferred)[0]
