"""Render a :class:`~telco_nbo.experiments.models.Readout` to markdown and to self-contained HTML.

Rendering is separate from computing: the same readout value renders the same report anywhere.
An untrustworthy readout (sample-ratio mismatch) opens with a red banner in HTML and a bold warning
block in markdown, before any number. Too-small segments show the words "too small", never a
number. The HTML embeds a forest plot per metric (absolute lift with its interval, by arm x
segment) as a base64 PNG, so the single file can be mailed, attached to MLflow, or opened offline.
"""

from __future__ import annotations

import base64
import html
import io

from telco_nbo.experiments.decision import decide
from telco_nbo.experiments.models import Comparison, MetricResult, MetricSpec, Readout, SegmentComparison

TOO_SMALL = "too small"


# --- number formatting ------------------------------------------------------------------------


def _mean(v: float | None, spec: MetricSpec) -> str:
    if v is None:
        return "—"
    return f"{v:.2%}" if spec.kind == "binary" else f"{v:,.2f}"


def _lift(v: float | None, spec: MetricSpec) -> str:
    if v is None:
        return "—"
    return f"{v * 100:+.2f} pp" if spec.kind == "binary" else f"{v:+,.2f}"


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:+.1%}"


def _p(v: float | None) -> str:
    if v is None:
        return "—"
    return "<0.0001" if v < 1e-4 else f"{v:.4f}"


def _ci(lo: float | None, hi: float | None, fmt) -> str:  # noqa: ANN001
    if lo is None or hi is None:
        return "—"
    return f"[{fmt(lo)}, {fmt(hi)}]"


def _comparison_cells(c: Comparison, spec: MetricSpec, sequential: bool) -> list[str]:
    lf = lambda v: _lift(v, spec)  # noqa: E731
    cells = [
        f"{c.arm} vs {c.reference}",
        f"{c.n_treatment:,} / {c.n_reference:,}",
        f"{_mean(c.mean_treatment, spec)} vs {_mean(c.mean_reference, spec)}",
        f"{lf(c.abs_lift)} {_ci(c.abs_ci_low, c.abs_ci_high, lf)}",
        (f"{_pct(c.rel_lift)} {_ci(c.rel_ci_low, c.rel_ci_high, _pct)}"
         + (f" p {_p(c.rel_p_value)}" if c.rel_p_value is not None else "")) if c.rel_lift is not None else (c.note or "—"),
        _p(c.p_value) + (" *" if c.significant else ""),
        f"{c.prob_beat_reference:.1%}",
        lf(c.expected_loss).lstrip("+"),
    ]
    if sequential:
        cells.append(_ci(c.seq_ci_low, c.seq_ci_high, lf)
                     + (f"; rel. {_ci(c.rel_seq_ci_low, c.rel_seq_ci_high, _pct)}" if c.rel_seq_ci_low is not None else ""))
    return cells


COMPARISON_HEADER = ["comparison", "units (arm / ref)", "means", "abs. lift [CI]", "rel. lift [CI]", "p", "P(beat)", "exp. loss"]
SEGMENT_HEADER = ["segment", "comparison", "units (arm / ref)", "abs. lift [CI]", "p", "p Holm", "p BH", "status"]


def _segment_cells(r: SegmentComparison, spec: MetricSpec) -> list[str]:
    head = [r.segment, f"{r.arm} vs {r.reference}", f"{r.n_treatment:,} / {r.n_reference:,}"]
    if r.status != "ok" or r.comparison is None:
        label = TOO_SMALL if r.status == "too_small" else "no variance"
        return head + [label, "—", "—", "—", label]
    c = r.comparison
    lf = lambda v: _lift(v, spec)  # noqa: E731
    return head + [f"{lf(c.abs_lift)} {_ci(c.abs_ci_low, c.abs_ci_high, lf)}", _p(c.p_value), _p(r.p_holm), _p(r.p_bh), "ok"]


def _summary_lines(readout: Readout) -> list[str]:
    lines = [
        f"unit: {readout.unit}",
        f"arms: {', '.join(readout.arms)} (control: {readout.control_arm})",
        f"alpha: {readout.alpha} (two-sided); primary metric: {readout.primary_metric}",
    ]
    if readout.sequential:
        lines.append(
            f"always-valid intervals: {readout.sequential.method}, planned units {readout.sequential.planned_units:,}"
        )
    return lines


# --- markdown ---------------------------------------------------------------------------------


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return out


def to_markdown(readout: Readout, *, rule=None) -> str:  # noqa: ANN001 - TimingRule | None
    """Render the readout as GitHub-flavoured markdown, the decision first.

    Args:
        readout: The readout.
        rule: The timing rule derived from the readout, if any.

    Returns:
        Markdown text.
    """

    md = [f"# A/B readout: {readout.experiment_id}", ""]
    if not readout.trustworthy:
        md += ["> **UNTRUSTWORTHY — DO NOT USE THESE RESULTS.**", ">"]
        md += [f"> {w}" for w in readout.warnings if "SAMPLE RATIO" in w] + [""]
    d = decide(readout, rule)
    md += [f"## Decision: {d.headline}", "", f"- **Which arm:** {d.arm or readout.control_arm + ' (no change)'}",
           f"- **How sure:** {d.how_sure}", f"- **What it is worth:** {d.worth}", f"- **What to do:** {d.action}",
           f"- **Timing rule:** {d.timing or 'none derived for this readout'}", ""]
    md += [f"- {line}" for line in _summary_lines(readout)] + [""]
    md += ["## Sample ratio check", ""]
    total = sum(readout.srm.observed.values())
    md += _md_table(
        ["arm", "units", "observed share", "designed share"],
        [[a, f"{n:,}", f"{n / total:.2%}", f"{readout.srm.expected_share[a]:.2%}"] for a, n in readout.srm.observed.items()],
    )
    verdict = "**MISMATCH**" if readout.srm.flagged else "ok"
    md += ["", f"chi-square = {readout.srm.chi2:.3f}, p = {_p(readout.srm.p_value)} (flag below {readout.srm.threshold}): {verdict}", ""]
    seq = readout.sequential is not None
    for m in readout.metrics:
        spec = m.spec
        tag = " (primary)" if spec.name == readout.primary_metric else ""
        direction = "higher is better" if spec.higher_is_better else "lower is better"
        md += [f"## {spec.title}{tag}", "", f"`{spec.name}`, {spec.kind}, {direction}.", ""]
        md += _md_table(["arm", "units", "mean", "sd"], [[a.arm, f"{a.units:,}", _mean(a.mean, spec), f"{a.std:.4g}"] for a in m.arms])
        md += [""]
        header = COMPARISON_HEADER + (["always-valid CI"] if seq else [])
        md += _md_table(header, [_comparison_cells(c, spec, seq) for c in m.comparisons])
        if m.cuped is not None:
            md += ["", f"**CUPED** on `{m.cuped.covariate}`: theta = {m.cuped.theta:.4g}, "
                   f"variance reduction {m.cuped.variance_reduction:.1%}.", ""]
            md += _md_table(header, [_comparison_cells(c, spec, seq) for c in m.cuped.comparisons])
        md += [""]
    if readout.segments:
        md += ["## Segments", "", f"Cells with fewer than {readout.min_segment_units} units in an arm are marked "
               f"'{TOO_SMALL}'. Adjusted p-values are per (segment column, metric) family.", ""]
        for col in readout.segment_columns:
            for m in readout.metrics:
                rows = [r for r in readout.segments if r.column == col and r.metric == m.spec.name]
                if rows:
                    md += [f"### {m.spec.title} by {col}", ""]
                    md += _md_table(SEGMENT_HEADER, [_segment_cells(r, m.spec) for r in rows]) + [""]
    other = [w for w in readout.warnings if "SAMPLE RATIO" not in w]
    if other:
        md += ["## Warnings", ""] + [f"- {w}" for w in other] + [""]
    md += ["`*` significant at alpha. P(beat): posterior probability the arm is better than the reference "
           "(direction-aware). Exp. loss: posterior expected loss of shipping the arm, in metric units.", ""]
    return "\n".join(md)


# --- forest plot ------------------------------------------------------------------------------


def forest_plot(readout: Readout, metric: str, *, segment_columns: list[str] | None = None):  # noqa: ANN201
    """Forest plot of absolute lift vs control with intervals, by arm x segment.

    Args:
        readout: The readout.
        metric: Metric name.
        segment_columns: Columns to show (default all of the readout's).

    Returns:
        A :class:`matplotlib.figure.Figure` (not attached to pyplot, so no global state).
    """
    from matplotlib.figure import Figure

    m = readout.metric(metric)
    spec = m.spec
    scale = 100.0 if spec.kind == "binary" else 1.0
    cols = readout.segment_columns if segment_columns is None else segment_columns
    # label, comparison, status, significant (segments: after Holm, the family-wise verdict)
    rows: list[tuple[str, Comparison | None, str, bool]] = []
    for c in m.primary_comparisons():
        rows.append((f"{c.arm} — overall", c, "ok", c.significant))
        for col in cols:
            for r in readout.segments:
                if r.column == col and r.metric == metric and r.arm == c.arm and r.reference == readout.control_arm:
                    sig = r.p_holm is not None and r.p_holm < readout.alpha
                    rows.append((f"{c.arm} — {col}={r.segment}", r.comparison, r.status, sig))
    height = max(2.5, 0.28 * len(rows) + 1.2)
    fig = Figure(figsize=(8.5, height), dpi=90)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(rows)))[::-1]
    for y, (label, c, status, sig) in zip(ys, rows, strict=True):
        if c is None:
            ax.text(0, y, TOO_SMALL if status == "too_small" else "no variance", va="center", ha="center",
                    fontsize=8, color="0.45", style="italic")
            continue
        color = "tab:green" if sig else "0.35"
        ax.errorbar(c.abs_lift * scale, y, xerr=[[(c.abs_lift - c.abs_ci_low) * scale], [(c.abs_ci_high - c.abs_lift) * scale]],
                    fmt="D" if "overall" in label else "o", color=color, ms=4, capsize=2, lw=1)
    ax.axvline(0, color="k", lw=0.8, ls="--")
    ax.set_ylim(-0.8, len(rows) - 0.2)
    ax.set_yticks(ys)
    ax.set_yticklabels([r[0] for r in rows], fontsize=7)
    ax.set_xlabel(f"absolute lift vs {readout.control_arm} ({'pp' if spec.kind == 'binary' else 'units'})"
                  + (", CUPED" if m.cuped is not None else ""))
    ax.set_title(f"{readout.experiment_id}: {spec.title} (green: significant; segments after Holm)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def forest_png(readout: Readout, metric: str) -> bytes:
    """The forest plot of ``metric`` as PNG bytes."""
    fig = forest_plot(readout, metric)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


# --- HTML -------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222;max-width:1200px}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}
.banner{background:#b00020;color:#fff;padding:1em 1.4em;font-size:18px;font-weight:bold;border-radius:4px}
.ok{background:#e8f5e9;padding:.5em 1em;border-radius:4px}
.small{color:#777;font-style:italic}.sig{font-weight:bold}
.decision{border:2px solid #1f6feb;border-radius:6px;padding:.8em 1.2em;margin:.8em 0 1.2em;background:#f6f8fa}
.decision h2{margin:.1em 0 .4em;font-size:22px}.decision dl{margin:0}.decision dt{font-weight:bold;margin-top:.45em}
.decision dd{margin:0 0 0 0;font-size:15px}.decision.bad{border-color:#b00020}
details{margin:1em 0}summary{cursor:pointer;font-weight:bold}
"""


def _decision_html(readout: Readout, rule) -> str:  # noqa: ANN001 - TimingRule | None
    d = decide(readout, rule)
    e = html.escape
    rows = [("Which arm", d.arm or f"{readout.control_arm} (no change)"), ("How sure", d.how_sure),
            ("What it is worth", d.worth), ("What to do", d.action),
            ("Timing rule", d.timing or "none derived for this readout")]
    cls = "decision" if d.trustworthy else "decision bad"
    return (f"<section class='{cls}' id='decision'><h2 id='headline'>{e(d.headline)}</h2><dl>"
            + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in rows) + "</dl></section>")


def _html_table(header: list[str], rows: list[list[str]], small_col: int | None = None) -> str:
    e = html.escape
    out = ["<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"]
    for r in rows:
        cls = ' class="small"' if small_col is not None and r[small_col] in (TOO_SMALL, "no variance") else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def to_html(readout: Readout, *, plots: bool = True, rule=None) -> str:  # noqa: ANN001 - TimingRule | None
    """Render the readout as one self-contained HTML page that answers first.

    The page opens with the decision (:func:`telco_nbo.experiments.decision.decide`: which arm, how
    sure, what it is worth, what to do, the timing rule), then the primary metric, the other
    metrics, and the sample-ratio and segment details.

    Args:
        readout: The readout.
        plots: Embed the forest plots (PNG, base64).
        rule: The timing rule derived from the readout, if any (shown in the decision).

    Returns:
        HTML text.
    """
    e = html.escape
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>A/B readout {e(readout.experiment_id)}</title>",
         f"<style>{_CSS}</style></head><body>", f"<h1>A/B readout: {e(readout.experiment_id)}</h1>"]
    if not readout.trustworthy:
        srm = [w for w in readout.warnings if "SAMPLE RATIO" in w]
        h.append("<div class='banner'>UNTRUSTWORTHY — DO NOT USE THESE RESULTS<br><span style='font-size:14px;font-weight:normal'>"
                 + "<br>".join(map(e, srm)) + "</span></div>")
    h.append(_decision_html(readout, rule))
    if readout.trustworthy:
        h.append("<div class='ok'>Sample ratio check passed.</div>")
    h.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in _summary_lines(readout)) + "</ul>")
    seq = readout.sequential is not None
    # The primary metric first: it is what the decision rests on.
    ordered = sorted(readout.metrics, key=lambda m: m.spec.name != readout.primary_metric)
    for m in ordered:
        h.append(_metric_html(readout, m, seq, plots))
    total = sum(readout.srm.observed.values())
    h.append("<h2>Sample ratio check</h2>")
    h.append(_html_table(["arm", "units", "observed share", "designed share"],
                         [[a, f"{n:,}", f"{n / total:.2%}", f"{readout.srm.expected_share[a]:.2%}"] for a, n in readout.srm.observed.items()]))
    h.append(f"<p>chi-square = {readout.srm.chi2:.3f}, p = {e(_p(readout.srm.p_value))} (flag below {readout.srm.threshold}): "
             f"<b>{'MISMATCH' if readout.srm.flagged else 'ok'}</b></p>")
    other = [w for w in readout.warnings if "SAMPLE RATIO" not in w]
    if other:
        h.append("<h2>Warnings</h2><ul>" + "".join(f"<li>{e(w)}</li>" for w in other) + "</ul>")
    h.append("<p><small>* significant at alpha. P(beat): posterior probability the arm is better than the reference "
             "(direction-aware). Exp. loss: posterior expected loss of shipping the arm, in metric units. "
             f"Segment cells with fewer than {readout.min_segment_units} units in an arm are marked '{TOO_SMALL}'; "
             "adjusted p-values are per (segment column, metric) family.</small></p></body></html>")
    return "".join(h)


def _metric_html(readout: Readout, m: MetricResult, seq: bool, plots: bool) -> str:
    e = html.escape
    spec = m.spec
    tag = " (primary)" if spec.name == readout.primary_metric else ""
    direction = "higher is better" if spec.higher_is_better else "lower is better"
    h = [f"<h2>{e(spec.title)}{tag}</h2><p><code>{e(spec.name)}</code>, {spec.kind}, {direction}.</p>"]
    h.append(_html_table(["arm", "units", "mean", "sd"], [[a.arm, f"{a.units:,}", _mean(a.mean, spec), f"{a.std:.4g}"] for a in m.arms]))
    header = COMPARISON_HEADER + (["always-valid CI"] if seq else [])
    h.append(_html_table(header, [_comparison_cells(c, spec, seq) for c in m.comparisons]))
    if m.cuped is not None:
        h.append(f"<p><b>CUPED</b> on <code>{e(m.cuped.covariate)}</code>: theta = {m.cuped.theta:.4g}, "
                 f"variance reduction {m.cuped.variance_reduction:.1%}.</p>")
        h.append(_html_table(header, [_comparison_cells(c, spec, seq) for c in m.cuped.comparisons]))
    if plots:
        png = base64.b64encode(forest_png(readout, spec.name)).decode("ascii")
        h.append(f"<img alt='forest plot {e(spec.name)}' src='data:image/png;base64,{png}'>")
    for col in readout.segment_columns:
        rows = [r for r in readout.segments if r.column == col and r.metric == spec.name]
        if rows:
            h.append(f"<h3>{e(spec.title)} by {e(col)}</h3>")
            h.append(_html_table(SEGMENT_HEADER, [_segment_cells(r, spec) for r in rows], small_col=7))
    return "".join(h)
