"""Render a :class:`~telco_nbo.evaluation.evaluate.PolicyEvaluation` as one self-contained HTML page.

The page answers first: one sentence with the policy's true value, its share of the oracle's and
how it compares with calling the riskiest customers; then a chart of value by policy (with 95 %
intervals) and by offer; then the off-policy estimates and the details. Charts are embedded PNGs,
so the file can be mailed or attached to an MLflow run.
"""

from __future__ import annotations

import base64
import html
import io

from telco_nbo.evaluation.evaluate import PolicyEvaluation

_NAMES = {"policy": "NBO policy", "oracle": "oracle (knows the truth)", "top_churn": "top predicted churn",
          "random": "random allowed offer", "contact_nobody": "contact nobody"}


def _money(v: float | None) -> str:
    return "—" if v is None else f"{v:+,.0f}"


def _ci(ci: tuple | list | None) -> str:
    return "—" if not ci else f"[{ci[0]:+,.0f}, {ci[1]:+,.0f}]"


def headline(ev: PolicyEvaluation) -> str:
    """The answer in one or two plain sentences."""
    if ev.true_value is None:
        dr = (ev.ope or {}).get("dr")
        if dr is None:
            return f"{ev.contacts:,} contacts; this folder has no truth and no logged exploration to value them."
        return (f"Estimated from the logged exploration (doubly robust): the {ev.contacts:,} contacts are worth "
                f"{_money(dr['estimate'])} against contacting nobody (95 % interval {_ci(dr['ci95'])}).")
    tot = ev.true_value
    b = ev.baselines or {}
    parts = [f"The policy's {ev.contacts:,} contacts create {_money(tot['total'])} in true value "
             f"(95 % interval {_ci(tot['ci95'])})"]
    if ev.share_of_oracle is not None:
        parts.append(f", {ev.share_of_oracle:.0%} of what an oracle would make")
    parts.append(".")
    tc = b.get("top_churn")
    dif = (ev.differences or {}).get("policy_minus_top_churn")
    if tc is not None and dif is not None:
        lo, hi = dif["ci95"]
        verdict = "beats" if lo > 0 else ("loses to" if hi < 0 else "cannot be told apart from")
        if tc["contacts"] == 0:
            best = (f"which is worth nothing at any budget: its best is to call nobody, and at the policy's "
                    f"budget it would make {_money(tc['at_policy_budget'])}")
        else:
            best = f"{_money(tc['total'])} at that targeting's best budget of {tc['contacts']:,} contacts"
        parts.append(f" It {verdict} calling the riskiest customers ({best}; difference "
                     f"{_money(dif['difference'])}, 95 % interval {_ci(dif['ci95'])}).")
    return "".join(parts)


def _chart(ev: PolicyEvaluation) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = []
    if ev.true_value is not None:
        rows.append(("policy", ev.true_value["total"], ev.true_value["ci95"]))
        for k in ("oracle", "top_churn", "random", "contact_nobody"):
            b = ev.baselines[k]
            rows.append((k, b["total"], b["ci95"]))
    if ev.ope is not None:
        rows.append(("policy, estimated from logs (DR)", ev.ope["dr"]["estimate"], ev.ope["dr"]["ci95"]))
    by_offer = {}
    if ev.true_value is not None:
        by_offer = {k: v["total"] for k, v in ev.true_value["by_offer"].items()}
    fig, axes = plt.subplots(1, 2 if by_offer else 1, figsize=(12 if by_offer else 7, 4.2), squeeze=False)
    ax = axes[0, 0]
    names = [_NAMES.get(r[0], r[0]) for r in rows]
    vals = [r[1] for r in rows]
    err = [[max(r[1] - r[2][0], 0) for r in rows], [max(r[2][1] - r[1], 0) for r in rows]]
    colors = ["#1f77b4" if r[0].startswith("policy") else "#9aa5b1" for r in rows]
    ax.barh(names[::-1], vals[::-1], xerr=[err[0][::-1], err[1][::-1]], color=colors[::-1], capsize=3)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_title("True value by policy (each at its own best budget), 95 % interval")
    if by_offer:
        ax2 = axes[0, 1]
        items = sorted(by_offer.items(), key=lambda kv: kv[1])
        oracle = (ev.baselines or {}).get("oracle", {}).get("by_offer", {})
        ax2.barh([k for k, _ in items], [v for _, v in items], color="#1f77b4", label="policy")
        ax2.scatter([oracle.get(k, 0.0) for k, _ in items], [k for k, _ in items], color="#d62728", zorder=3,
                    label="oracle")
        ax2.axvline(0, color="black", lw=0.8)
        ax2.legend(loc="lower right")
        ax2.set_title("True value by offer")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def to_html(ev: PolicyEvaluation) -> str:
    """The whole report as one HTML page."""
    e = html.escape
    lines = ["<!doctype html><html><head><meta charset='utf-8'><title>Policy value</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
             "h1{font-size:1.5em}.answer{font-size:1.2em;background:#eef5ff;padding:.8em 1em;border-radius:6px}"
             "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
             "text-align:right}th:first-child,td:first-child{text-align:left}</style></head><body>",
             f"<h1>What the decisions are worth (as of {e(ev.as_of)})</h1>",
             f"<p class='answer' id='headline'>{e(headline(ev))}</p>",
             f"<img alt='value by policy and by offer' src='data:image/png;base64,{_chart(ev)}'>"]
    if ev.true_value is not None:
        lines.append("<h2>Against the baselines (same rules, true value)</h2><table><tr><th>policy</th>"
                     "<th>contacts</th><th>true value</th><th>95 % interval</th><th>at the policy's budget</th></tr>")
        t = ev.true_value
        lines.append(f"<tr><td>NBO policy</td><td>{t['contacts']:,}</td><td>{_money(t['total'])}</td>"
                     f"<td>{_ci(t['ci95'])}</td><td>{_money(t['total'])}</td></tr>")
        for k in ("oracle", "top_churn", "random", "contact_nobody"):
            b = ev.baselines[k]
            lines.append(f"<tr><td>{e(_NAMES[k])}</td><td>{b['contacts']:,}</td><td>{_money(b['total'])}</td>"
                         f"<td>{_ci(b['ci95'])}</td><td>{_money(b['at_policy_budget'])}</td></tr>")
        lines.append("</table>")
        lines.append(f"<p>Rules: {e(ev.baselines['rules'])}. Top churn orders by "
                     f"{e(ev.baselines['top_churn'].get('churn_source', ''))}.</p>")
        lines.append("<table><tr><th>difference</th><th>value</th><th>95 % interval (paired, over accounts)</th></tr>")
        for k, v in (ev.differences or {}).items():
            lines.append(f"<tr><td>{e(k.replace('_', ' '))}</td><td>{_money(v['difference'])}</td>"
                         f"<td>{_ci(v['ci95'])}</td></tr>")
        lines.append("</table><h2>By offer</h2><table><tr><th>offer</th><th>contacts</th><th>true value</th>"
                     "<th>per contact</th><th>95 % interval</th></tr>")
        for k, v in sorted(ev.true_value["by_offer"].items(), key=lambda kv: -kv[1]["total"]):
            lines.append(f"<tr><td>{e(k)}</td><td>{v['contacts']:,}</td><td>{_money(v['total'])}</td>"
                         f"<td>{v['per_contact']:+,.2f}</td><td>{_ci(v['ci95'])}</td></tr>")
        lines.append("</table>")
    lines.append("<h2>Estimated from the logs alone (off-policy)</h2>")
    if ev.ope is not None:
        lines.append("<table><tr><th>estimator</th><th>value vs contacting nobody</th><th>95 % interval</th></tr>")
        for k, name in (("dr", "doubly robust"), ("snips", "self-normalized IPS"), ("ips", "IPS")):
            o = ev.ope[k]
            lines.append(f"<tr><td>{name}</td><td>{_money(o['estimate'])}</td><td>{_ci(o['ci95'])}</td></tr>")
        lines.append("</table>")
    lines.append(f"<p>{e(ev.ope_note)}</p>")
    for n in ev.notes:
        lines.append(f"<p>{e(n)}</p>")
    lines.append("<p>True value = expected margin of acceptances − change in 90-day churn × what a kept customer "
                 "is worth − contact cost, against not contacting (telco_nbo.evaluation.economics).</p>")
    lines.append("</body></html>")
    return "\n".join(lines)
