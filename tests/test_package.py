"""The package's promises: the wheel ships its configs and trains from any directory, modules stay
small, packages import in one direction, each default is written once (in the schema), and the
same command and seed give the same model."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from clihelpers import TINY_MODEL, run, tiny_corpus_args

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mt"
CONFIGS = PACKAGE / "configs"
MAX_MODULE_LINES = 400


def tiny_training(steps: int, val_every: int) -> list[str]:
    """TINY_MODEL with a shorter run on the CPU: greedy test decoding, short outputs (an untrained
    model writes up to the length limit), 10 validation sentences, no plots."""
    replaced = (
        "trainer.max_steps=",
        "trainer.val_every=",
        "trainer.test_beam_size=",
        "trainer.plot_sentences=",
    )
    return [a for a in TINY_MODEL if not a.startswith(replaced)] + [
        f"trainer.max_steps={steps}", f"trainer.val_every={val_every}", "trainer.test_beam_size=1",
        "trainer.plot_sentences=[]", "trainer.valid_max_sentences=10", "trainer.max_len_a=0.5",
        "trainer.max_len_b=2", "trainer.device=cpu",
    ]  # fmt: skip


def package_files(folder: Path) -> list[str]:
    """Files under `folder`, relative to the repository root, without Python caches."""
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


# ---------------------------------------------------------------------------------------------
# The wheel


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The project built into a wheel and installed with `pip --target`: (site folder, wheel names).

    The wheel is built from a copy of pyproject.toml, README.md and mt/, so that no build/ folder
    lands in the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(PACKAGE, src / "mt", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    built = subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("mt-*.whl")
    site = tmp / "site"
    installed = subprocess.run(
        [*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    with zipfile.ZipFile(wheel) as zf:
        return site, zf.namelist()


def installed_env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(site), "HYDRA_FULL_ERROR": "1"}


@pytest.mark.slow
def test_wheel_ships_every_config_file(installed_wheel: tuple[Path, list[str]]):
    _, names = installed_wheel
    configs = package_files(CONFIGS)
    assert [f for f in configs if f.endswith(".yaml")], "no YAML configs found in mt/configs"
    assert [f for f in configs if f not in names] == []


@pytest.mark.slow
def test_installed_wheel_trains_outside_the_checkout(installed_wheel: tuple[Path, list[str]], tmp_path: Path):
    """A few training steps from the installed wheel, in a folder that is not the checkout."""
    site, _ = installed_wheel
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = installed_env(site)
    where = subprocess.run(
        [sys.executable, "-c", "import mt.cli.common as c, mt.training.run as r; print(c.CONFIG_DIR); print(r.__file__)"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert where.returncode == 0, where.stderr[-3000:]
    config_dir, module = where.stdout.split()
    assert Path(config_dir) == site / "mt" / "configs" and Path(module).is_relative_to(site)

    run_dir = work / "run"
    args = tiny_corpus_args(work) + [f"hydra.run.dir={run_dir}"] + tiny_training(steps=4, val_every=2)
    proc = subprocess.run(
        [sys.executable, "-m", "mt.cli.train", *args], cwd=work, env=env, capture_output=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train"]["steps"] == 4
    # Hydra read the configs through the installed package (CONFIG_DIR of the mt.cli.common it imported)
    hydra_cfg = (run_dir / ".hydra" / "hydra.yaml").read_text()
    assert f"path: {site / 'mt' / 'configs'}\n" in hydra_cfg and str(ROOT / "mt") not in hydra_cfg


def test_python_m_mt_train_composes_the_config(tmp_path: Path):
    """`python -m mt.train` (what torchrun runs) still reaches Hydra with the packaged configs."""
    proc = subprocess.run(
        [sys.executable, "-m", "mt.train", "--cfg", "job", "trainer.max_steps=7", "model=lstm"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "  max_steps: 7\n" in proc.stdout and "  rnn_type: lstm\n" in proc.stdout


# ---------------------------------------------------------------------------------------------
# Module sizes and package structure


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_module_passes_400_lines():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in modules()}
    assert {f: n for f, n in sizes.items() if n > MAX_MODULE_LINES} == {}, "split these modules"


# Lower layers first; a package may import its own layer or a lower one. mt.train is the
# `python -m mt.train` entry point (torchrun), so it sits with cli.
LAYERS = [
    {"errors", "io", "config", "config_ranges", "command_config", "runtime", "configs"},
    {"data"},
    {"models"},
    {"search"},
    {"evaluation"},
    {"training"},
    {"report"},
    {"cli", "train"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[str, int, str]]:
    """(imported module, line, source line) for every `mt` import in the file, functions included."""
    source = path.read_text()
    lines = source.splitlines()
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y / from .. import y
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from mt import runtime` and `from mt.data import multi30k` import submodules
            targets = list(dict.fromkeys(f"{base}.{a.name}" if base == "mt" else base for a in node.names))
        for target in targets:
            if target == "mt" or target.startswith("mt."):
                found.append((target, node.lineno, lines[node.lineno - 1].strip()))
    return found


def top_package(module: str) -> str | None:
    """mt.data.loaders -> data; the root package `mt` -> None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_edges() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the import lines behind that edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in modules():
        src = top_package(module_name(path))
        for target, lineno, text in imported_modules(path):
            dst = top_package(target)
            if src and dst and src != dst:
                where = f"{path.relative_to(ROOT).as_posix()}:{lineno}: {text}"
                edges.setdefault((src, dst), []).append(where)
    return edges


def strongly_connected(nodes: set[str], edges: set[tuple[str, str]]) -> list[set[str]]:
    """Components of the graph with more than one package, i.e. the import cycles (Tarjan)."""
    succ = {n: sorted(b for a, b in edges if a == n) for n in nodes}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return out


def test_every_package_has_a_layer():
    packages = {top_package(module_name(p)) for p in modules()} - {None}
    assert packages - set(RANK) == set(), "add the new package to LAYERS"


def test_no_import_cycles_between_packages():
    edges = package_edges()
    nodes = {n for edge in edges for n in edge}
    cycles = strongly_connected(nodes, set(edges))
    report = []
    for comp in cycles:  # each cycle's import lines, those against the layer order (LAYERS) marked
        report.append(f"cycle between {', '.join(sorted(comp))}:")
        for (a, b), where in sorted(edges.items()):
            if {a, b} <= comp:
                report += [
                    f"  {line}{'   <- against the layer order' if RANK[a] < RANK[b] else ''}"
                    for line in where
                ]
    assert cycles == [], "import cycles between packages:\n" + "\n".join(report)


def test_library_code_never_imports_cli():
    bad = [line for (a, b), where in sorted(package_edges().items()) if b == "cli" and RANK[a] < RANK["cli"]
           for line in where]  # fmt: skip
    assert bad == []


def test_lower_layers_never_import_higher_ones():
    """errors, io, config, runtime -> data -> models -> search -> evaluation -> training -> report -> cli."""
    bad = [line for (a, b), where in sorted(package_edges().items()) if RANK[a] < RANK[b] for line in where]
    assert bad == [], "a lower layer imports a higher one:\n" + "\n".join(bad)


def test_root_package_imports_nothing_of_its_own():
    """`import mt` stays cheap: mt/__init__.py imports no submodule."""
    assert imported_modules(PACKAGE / "__init__.py") == []


SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_package_docstring_says_what_lives_there_in_three_lines(package: str):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc and doc.strip(), f"mt/{package}/__init__.py has no docstring"
    assert len(doc.strip().splitlines()) <= 3, f"mt/{package}/__init__.py: docstring over three lines"


# ---------------------------------------------------------------------------------------------
# Each default written once: the schemas in mt/config.py hold them, the YAML files what differs


def schemas() -> dict[str, Any]:
    from mt import config

    return {
        "data": config.DataConfig, "tokenizer": config.TokenizerConfig, "model": config.ModelConfig,
        "model/attention": config.AttentionConfig, "optim": config.OptimConfig, "trainer": config.TrainerConfig,
    }  # fmt: skip


GROUPS = ("data", "tokenizer", "model", "model/attention", "optim", "trainer")
GROUP_OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONFIGS / g).glob("*.yaml"))]
# YAML values equal to a schema default that stay, with the reason. Each entry must still be needed.
ALLOWED_REPEATS = {
    ("experiment/quick.yaml", "optim.lr"): "experiment files come after the optim group: this pins the "
    "learning rate for optim=adamw too (whose own lr is 0.001)",
}


def yaml_values(path: Path) -> dict[str, Any]:
    """The values a YAML file sets (interpolations unresolved), without `defaults` and `hydra`."""
    from omegaconf import OmegaConf

    values = OmegaConf.to_container(OmegaConf.load(path), resolve=False) or {}
    return {k: v for k, v in values.items() if k not in ("defaults", "hydra")}


def repeated_defaults(values: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys in `values` whose value equals the default of that key in `defaults`."""
    repeated = []
    for key, value in values.items():
        if key not in defaults:
            continue  # a key the schema does not have (e.g. data.files.train) is no default
        if isinstance(value, dict) and isinstance(defaults[key], dict):
            repeated += repeated_defaults(value, defaults[key], f"{prefix}{key}.")
        elif value == defaults[key]:
            repeated.append(f"{prefix}{key}")
    return repeated


def schema_defaults(schema: type) -> dict[str, Any]:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(schema), resolve=False)


def flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.fixture(scope="module")
def compose_train():
    """compose(overrides) -> the real mt-train config (unresolved), as Hydra composes it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from mt.cli.common import CONFIG_DIR, register_resolvers
    from mt.command_config import register_configs

    register_resolvers()
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        yield lambda overrides: compose("train", overrides=overrides)
    GlobalHydra.instance().clear()


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_group_option_sets_only_what_differs_from_the_schema(group: str, option: str, compose_train):
    from omegaconf import OmegaConf

    path = CONFIGS / group / f"{option}.yaml"
    values = yaml_values(path)
    cfg = compose_train([f"{group}={option}"])
    composed = flat(OmegaConf.to_container(OmegaConf.select(cfg, group.replace("/", ".")), resolve=False))
    # the option composes, and no later file of the defaults list undoes what it sets
    assert {k: composed.get(k, "<absent>") for k in flat(values)} == flat(values)
    repeated = repeated_defaults(values, schema_defaults(schemas()[group]))
    assert repeated == [], f"{path.relative_to(ROOT)} repeats schema defaults"


def test_primary_and_experiment_files_set_only_what_differs():
    """train/evaluate/data_stats.yaml against their schemas; experiment and hparams_search files
    (global packages) against the training schema."""
    from mt import command_config, config

    files = {CONFIGS / "train.yaml": config.TrainConfig, CONFIGS / "evaluate.yaml": command_config.EvaluateConfig,
             CONFIGS / "data_stats.yaml": command_config.DataStatsConfig}  # fmt: skip
    for group in ("experiment", "hparams_search"):
        files.update({p: config.TrainConfig for p in sorted((CONFIGS / group).glob("*.yaml"))})
    found = set()
    for path, schema in files.items():
        name = path.relative_to(CONFIGS).as_posix()
        found |= {(name, key) for key in repeated_defaults(yaml_values(path), schema_defaults(schema))}
    assert found - set(ALLOWED_REPEATS) == set(), "these YAML values repeat the schema's default"
    assert set(ALLOWED_REPEATS) - found == set(), "allowed repeats no longer present: drop them from the list"


# ---------------------------------------------------------------------------------------------
# Reproducibility


@pytest.mark.slow
def test_same_command_and_seed_give_identical_parameters(tmp_path: Path):
    """Two real `mt-train` runs of the same command on the CPU: bit-identical weights and scores."""
    import torch

    args = tiny_corpus_args(tmp_path) + tiny_training(steps=6, val_every=3)
    runs = []
    for name in ("a", "b"):
        proc = run("mt-train", args + [f"hydra.run.dir={tmp_path / name}"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        runs.append(tmp_path / name)
    a, b = (torch.load(r / "checkpoints" / "last.pt", weights_only=True)["model"] for r in runs)
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
    # validation records, less their wall-clock time
    ha, hb = (
        [{k: v for k, v in rec.items() if k != "minutes"} for rec in json.loads((r / "results.json").read_text())["train"]["history"]]
        for r in runs
    )  # fmt: skip
    assert len(ha) == 2 and ha == hb
    assert (runs[0] / "outputs" / "test.hyp").read_bytes() == (runs[1] / "outputs" / "test.hyp").read_bytes()
