"""The installed package: one `eie` namespace, nothing else at the top level, layers kept.

The wheel is built once (no build isolation, offline), then:
- its only top-level entry is `eie/` (plus its dist-info);
- import-linter checks the layer contract of pyproject.toml on the installed layout (the source
  tree maps hw/, compress/, sim/, tb/ into eie, which import-linter cannot follow), and fails when
  a layer is broken on purpose;
- in a fresh venv holding only the wheel (dependencies reached through a .pth), `import eie` works
  from a directory full of decoy `sim.py`, `compress.py`, `hw.py` and `tb.py` modules.
"""

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy of the sources, so that setuptools' build/ stays out of the checkout.
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    folders = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values())
    for folder in folders:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(out), str(src)], check=True, capture_output=True)
    (whl,) = out.glob("eie_gen-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    return site


def test_the_wheel_installs_only_the_eie_package(wheel):
    with zipfile.ZipFile(wheel) as z:
        top = {name.split("/")[0] for name in z.namelist()}
        names = z.namelist()
    assert {t for t in top if not t.endswith(".dist-info")} == {"eie"}
    for sub in ("spec", "hw", "compress", "sim", "tb", "tb/units"):
        assert f"eie/{sub}/__init__.py" in names, sub
    assert not any(n.startswith("eie/tests") for n in names)


def _lint(site: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--no-cache", str(ROOT / "pyproject.toml")], cwd=site,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)


def test_layer_contract_holds(installed):
    result = _lint(installed)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("spec/numerics.py", "import torch", "the spec is plain Python and NumPy"),
    ("sim/golden.py", "import eie.compress.train", "eie is layered"),
    ("hw/lnzd.py", "from eie.tb import runner", "eie is layered"),
])
def test_layer_contract_fails_when_broken(installed, tmp_path, module, line, contract):
    broken = tmp_path / "site"
    shutil.copytree(installed, broken)
    path = broken / "eie" / module
    path.write_text(line + "\n" + path.read_text())
    result = _lint(broken)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout, result.stdout


def test_import_eie_from_a_fresh_venv_beside_decoy_modules(installed, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    shutil.copytree(installed / "eie", site / "eie")
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "numpy").is_dir())
    (site / "dependencies.pth").write_text(f"{deps}\n")
    work = tmp_path / "work"
    work.mkdir()
    for decoy in ("sim", "compress", "hw", "tb", "spec"):
        (work / f"{decoy}.py").write_text(f"raise ImportError('the decoy {decoy}.py was imported')\n")
    code = ("import eie, eie.sim.golden, eie.compress.pipeline, eie.hw.accelerator, eie.tb.runner, eie.cli\n"
            "print(eie.__file__)\n"
            "print(callable(eie.compress_model), eie.EIEConfig(n_pe=2).config_hash())\n")
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    where, api = result.stdout.splitlines()
    assert Path(where).is_relative_to(site), where
    assert api.startswith("True ")
