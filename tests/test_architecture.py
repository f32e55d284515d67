"""The floors of docs/architecture.md, checked on every module's imports (read with `ast`)."""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
PACKAGES = ("keras_bert", "training", "export", "benchmarks")

# (importing package prefix, imported package prefix that it must not import)
FORBIDDEN = [
    ("keras_bert", "training"),
    ("keras_bert", "export"),
    ("keras_bert", "benchmarks"),
    ("keras_bert.text", "keras_bert.models"),
    ("keras_bert.text", "keras_bert.bert_encoder"),
    ("keras_bert.text", "keras_bert.layers"),
    ("keras_bert.text", "keras_bert.tasks"),
    ("keras_bert.layers", "keras_bert.models"),
    ("keras_bert.layers", "keras_bert.tasks"),
    ("keras_bert.layers", "keras_bert.text"),
    ("keras_bert.models", "keras_bert.tasks"),
    ("export", "training"),
    ("training", "export"),
    ("benchmarks", "training"),
    ("benchmarks", "export"),
]


# The model directory is where a saved model meets its task: it alone may read the registry.
# The pretraining benchmark times the exact train step of training.pretrain.
ALLOWED = [
    ("keras_bert.models.model_dir", "keras_bert.tasks"),
    ("benchmarks.pretraining_throughput", "training.core"),
]


def _module_name(path):
    relative = os.path.relpath(path, ROOT)[: -len(".py")]
    parts = relative.split(os.sep)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _project_modules():
    for package in PACKAGES:
        for directory, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(directory, name)
                    yield _module_name(path), path


def _imports(path):
    """Absolute names of every module `path` imports, at any depth (function bodies too)."""
    with open(path, encoding="utf-8") as source_file:
        tree = ast.parse(source_file.read(), path)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def test_imports_point_down_only():
    violations = []
    for module, path in _project_modules():
        for imported in _imports(path):
            for importer, forbidden in FORBIDDEN:
                allowed = any(
                    _within(module, a) and _within(imported, b) for a, b in ALLOWED
                )
                if _within(module, importer) and _within(imported, forbidden) and not allowed:
                    violations.append(f"{os.path.relpath(path, ROOT)} imports {imported}")
    assert not violations, "\n".join(sorted(set(violations)))


def test_the_import_checker_sees_function_level_imports(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from training.core import input_pipeline\n")
    assert "training.core.input_pipeline" in _imports(str(path))


@pytest.mark.parametrize(
    "folder",
    ["keras_bert", "keras_bert/layers", "keras_bert/models", "keras_bert/checkpoints",
     "keras_bert/text", "keras_bert/tasks", "training", "export", "benchmarks"],
)
def test_every_folder_has_a_readme_listing_its_files(folder):
    """Every module of the folder (and of its `core/`, as `core/name.py`) has a table row."""
    readme = os.path.join(ROOT, folder, "README.md")
    assert os.path.isfile(readme), f"{folder}/README.md is missing"
    with open(readme, encoding="utf-8") as readme_file:
        text = readme_file.read()
    listed = []
    for subfolder in ("", "core"):
        directory = os.path.join(ROOT, folder, subfolder)
        if subfolder and not os.path.isdir(directory):
            continue
        listed += [
            os.path.join(subfolder, name) if subfolder else name
            for name in sorted(os.listdir(directory))
            if name.endswith(".py") and name != "__init__.py"
        ]
    missing = [name for name in listed if f"`{name}`" not in text]
    assert not missing, f"{folder}/README.md does not list {missing}"
