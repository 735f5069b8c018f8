"""The README's Python example runs as written (in a scratch directory, so its out/ stays there)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    section = README.read_text().split("## The Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's Python API section has no python example"
    return match.group(1)


@pytest.mark.rtl
def test_the_python_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(python_example(), "README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out
    assert re.search(r"<Compressed 13 → 64 → 3 on 4 PEs, [\d.]+x smaller, images out/wine>", printed), printed
    assert "'golden'" in printed
    assert (tmp_path / "out" / "wine" / "report.json").is_file()
    assert (tmp_path / "out" / "wine-rtl" / "eie_top.v").is_file()
