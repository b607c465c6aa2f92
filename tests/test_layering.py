"""The package's layering, read from the source: the data and model layers sit below the driver,
the CLIs and interop, and never import them (directly or through another electra_tf module)."""

import ast
from pathlib import Path

import pytest

from electra_tf import REPO_ROOT

PACKAGE = REPO_ROOT / "electra_tf"
LOWER_LAYERS = ("data", "model")
ABOVE_THEM = (
    "electra_tf.cli",
    "electra_tf.export",
    "electra_tf.interop",
    "electra_tf.training",
    "electra_tf.distribution",
)
"""Modules and packages no data or model module may reach: flags, interop and the training driver."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _source(module: str) -> Path | None:
    """The file of an electra_tf module or package, or ``None`` for a name inside a module (a class)."""
    base = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(text: str, module: str, is_package: bool = False) -> set[str]:
    """The electra_tf modules the source ``text`` of ``module`` imports anywhere (top level or inside
    functions), relative imports resolved."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module
            found.add(base)
            # ``from electra_tf import training`` imports the module electra_tf.training.
            found |= {f"{base}.{alias.name}" for alias in node.names if _source(f"{base}.{alias.name}")}
    return {name for name in found if name == "electra_tf" or name.startswith("electra_tf.")}


def _reachable(module: str) -> dict[str, str]:
    """Every electra_tf module ``module`` imports, directly or not, each with the module that imports it."""
    importer: dict[str, str] = {}
    pending = [module]
    while pending:
        current = pending.pop()
        source = _source(current)
        if source is None:
            continue
        text = source.read_text(encoding="utf-8")
        for name in imported_modules(text, current, is_package=source.name == "__init__.py"):
            if name not in importer and name != module:
                importer[name] = current
                pending.append(name)
    return importer


def _forbidden(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in ABOVE_THEM)


@pytest.mark.parametrize(
    "path",
    sorted(path for layer in LOWER_LAYERS for path in (PACKAGE / layer).rglob("*.py")),
    ids=lambda path: str(path.relative_to(PACKAGE)),
)
def test_data_and_model_modules_reach_no_cli_interop_or_driver_module(path):
    module = _module_name(path)
    reached = _reachable(module)
    wrong = {name: via for name, via in reached.items() if _forbidden(name)}
    assert not wrong, f"{module} reaches {sorted(wrong)} (imported by {wrong})"


def test_the_import_reader_sees_every_form_of_import():
    """The check above can fail: each way of writing an import of a driver module is found."""
    text = (
        "import electra_tf.cli.common\n"
        "from electra_tf import training\n"
        "from ..interop import hf_export\n"
        "from . import masking\n"
        "def later():\n"
        "    from electra_tf.distribution import is_chief\n"
    )
    found = imported_modules(text, "electra_tf.model.sample")
    assert found == {
        "electra_tf",
        "electra_tf.cli.common",
        "electra_tf.training",
        "electra_tf.interop",
        "electra_tf.interop.hf_export",
        "electra_tf.model",
        "electra_tf.model.masking",
        "electra_tf.distribution",
    }
    assert {name for name in found if _forbidden(name)} == found - {
        "electra_tf",
        "electra_tf.model",
        "electra_tf.model.masking",
    }
