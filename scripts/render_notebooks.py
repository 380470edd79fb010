"""Execute the notebooks on a small world and write each as one self-contained HTML page (``make docs``).

The notebooks are committed without outputs (``tests/docs/test_notebooks.py`` keeps them so); this is
how a reader gets them with their charts and tables: ``make docs`` writes ``docs/notebooks/*.html``
and an ``index.html``. Execution goes through nbclient, as in the test suite; the HTML is built
here from the executed cells (markdown via markdown-it, code highlighted by Pygments, images
embedded as base64, tables as the HTML the notebook produced), so no extra package is needed.

Usage: python scripts/render_notebooks.py [--households N] [--out docs/notebooks] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222;
padding:0 1em}
.cell{margin:1em 0}.md{line-height:1.5}
.src{border-left:3px solid #1f6feb;background:#f6f8fa;padding:.3em .8em;overflow-x:auto;font-size:13px}
.out{padding:.3em .8em;overflow-x:auto}.out pre{font-size:12.5px;margin:.2em 0}
.err{background:#fff0f0;border-left:3px solid #b00020}
table{border-collapse:collapse;font-size:12.5px}td,th{border:1px solid #ddd;padding:2px 6px}
img{max-width:100%}
"""


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def _code(source: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(source, PythonLexer(), HtmlFormatter(nowrap=True))


def _output(out: dict) -> str:
    kind = out.get("output_type")
    if kind == "stream":
        return f"<pre>{html.escape(''.join(out.get('text', '')))}</pre>"
    if kind == "error":
        import re

        tb = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(out.get("traceback", [])))  # ANSI colours out
        return f"<pre class='err'>{html.escape(tb)}</pre>"
    data = out.get("data", {})
    if "image/png" in data:
        return f"<img alt='figure' src='data:image/png;base64,{''.join(data['image/png']).strip()}'>"
    if "image/svg+xml" in data:
        return "".join(data["image/svg+xml"])
    if "text/html" in data:
        # The notebook's own HTML (pandas tables): produced by the project's code, shown as is.
        return "".join(data["text/html"])
    if "text/markdown" in data:
        return _markdown("".join(data["text/markdown"]))
    if "text/plain" in data:
        return f"<pre>{html.escape(''.join(data['text/plain']))}</pre>"
    return ""


def notebook_html(nb: dict, title: str) -> str:
    """One executed notebook (nbformat v4 as a dict) as a self-contained HTML page."""
    from pygments.formatters import HtmlFormatter

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{CSS}{HtmlFormatter().get_style_defs('.src')}</style></head><body>"]
    for cell in nb["cells"]:
        src = "".join(cell.get("source", ""))
        if cell["cell_type"] == "markdown":
            parts.append(f"<div class='cell md'>{_markdown(src)}</div>")
        elif cell["cell_type"] == "code":
            parts.append(f"<div class='cell'><pre class='src'>{_code(src)}</pre>")
            outs = "".join(_output(o) for o in cell.get("outputs", []))
            if outs:
                parts.append(f"<div class='out'>{outs}</div>")
            parts.append("</div>")
    parts.append("</body></html>")
    return "".join(parts)


def index_html(pages: list[tuple[str, str, float]]) -> str:
    rows = "".join(f"<li><a href='{html.escape(f)}'>{html.escape(t)}</a> <small>({s:.0f} s)</small></li>"
                   for f, t, s in pages)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>telco-nbo notebooks</title><style>{CSS}</style>"
            f"</head><body><h1>telco-nbo notebooks, executed</h1><ul>{rows}</ul></body></html>")


def main(argv: list[str] | None = None) -> int:
    import nbformat
    from nbclient import NotebookClient

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    ap.add_argument("--households", type=int, default=None,
                    help="size of the world each notebook generates (default: each notebook's own; small worlds "
                         "may leave a model below the promotion gate's quality floor, and a notebook that ranks stops)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "notebooks")
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((REPO / "notebooks").glob("*.ipynb"))
    args.out.mkdir(parents=True, exist_ok=True)
    pages = []
    for path in paths:
        with tempfile.TemporaryDirectory() as work:
            os.environ.update({"TELCO_NBO_NB_WORKDIR": work, "MPLBACKEND": "Agg"})
            if args.households is not None:
                os.environ["TELCO_NBO_NB_HOUSEHOLDS"] = str(args.households)
            nb = nbformat.read(path, as_version=4)
            t0 = time.perf_counter()
            print(f"executing {path.name} ...", flush=True)
            NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": work}}).execute()
            secs = time.perf_counter() - t0
        title = next((c.source.splitlines()[0].lstrip("# ") for c in nb.cells if c.cell_type == "markdown"), path.stem)
        target = args.out / f"{path.stem}.html"
        target.write_text(notebook_html(nb, title), encoding="utf-8")
        pages.append((target.name, title, secs))
        print(f"  -> {target} ({secs:.0f} s)")
    (args.out / "index.html").write_text(index_html(pages), encoding="utf-8")
    print(f"index: {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
