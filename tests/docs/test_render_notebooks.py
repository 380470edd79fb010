"""``make docs``: notebooks executed and written as self-contained HTML with their charts (issue 19)."""

from __future__ import annotations

import base64
import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _renderer():
    spec = importlib.util.spec_from_file_location("render_notebooks", REPO / "scripts" / "render_notebooks.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.integration
def test_an_executed_notebook_renders_with_its_figure_and_table(tmp_path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook(cells=[
        new_markdown_cell("# Churn by contract\n\nA *small* example with a table and a chart."),
        new_code_cell("import pandas as pd\nframe = pd.DataFrame({'contract': ['m2m', '1y'], 'churn': [0.3, 0.1]})\nframe"),
        new_code_cell("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
                      "%matplotlib inline\nplt.bar(frame.contract, frame.churn); plt.show()"),
        new_code_cell("print('done <ok>')"),
    ])
    path = tmp_path / "01_example.ipynb"
    nbformat.write(nb, path)
    out = tmp_path / "html"
    assert _renderer().main([str(path), "--out", str(out), "--households", "500"]) == 0
    page = (out / "01_example.html").read_text()
    assert "<h1>Churn by contract</h1>" in page and "<em>small</em>" in page
    assert "<table" in page and "m2m" in page  # the DataFrame's own HTML
    pngs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=\n]+)'", page)
    assert pngs and base64.b64decode(pngs[0]).startswith(b"\x89PNG")
    assert "done &lt;ok&gt;" in page  # stream output escaped
    index = (out / "index.html").read_text()
    assert "01_example.html" in index and "Churn by contract" in index
