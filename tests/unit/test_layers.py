"""The layer contract (pyproject.toml, checked by lint-imports in CI) names every package of
shoal, so that a new one cannot escape it by being left out."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _layers() -> list[set[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = config["tool"]["importlinter"]["contracts"]
    return [{name.strip() for name in layer.split("|")} for layer in contract["layers"]]


def test_every_package_and_module_of_shoal_has_a_layer():
    src = ROOT / "src" / "shoal"
    present = {
        f"shoal.{p.stem}"
        for p in src.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.stem != "__init__")
    }
    named = set().union(*_layers())
    assert present - named == set(), "add these to the layers in pyproject.toml"
    assert named - present == set(), "these layers name nothing that exists"
