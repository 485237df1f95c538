"""The almanac: one static HTML page with every law's latest verdict and figure, drawn from the
run store alone (no computation)."""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from pathlib import Path

from lmech.core import Verdict
from lmech.report.figures import render
from lmech.report.format import short, verdict_word
from lmech.store import RunStore

PILLARS = {
    1: "solvable settings",
    2: "tractable limits",
    3: "simple laws",
    4: "hyperparameters",
    5: "universal behaviours",
}

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222}
table{border-collapse:collapse;width:100%;font-size:0.9em}th,td{border-bottom:1px solid #ddd;
padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}.HOLDS{color:#1a7f37;
font-weight:bold}.FAILS,.DIVERGED{color:#c62828;font-weight:bold}img{max-width:100%;border:1px solid #eee}
section{margin-top:2.5em}code{background:#f6f6f6;padding:1px 4px}.small{color:#666;font-size:0.85em}
"""


def figure_path(out_dir: Path, law: str) -> Path:
    return out_dir / "figures" / f"{law}.png"


def render_verdict(verdict: Verdict, out_dir: str | Path) -> Path | None:
    """Draw one verdict's figure into ``out_dir/figures/<law>.png`` (a verdict without a figure,
    e.g. a diverged run, removes the stale one)."""
    path = figure_path(Path(out_dir), verdict.law)
    if verdict.figure is None:
        path.unlink(missing_ok=True)
        return None
    return render(verdict.figure, path)


def write_almanac(store: RunStore, out_dir: str | Path, scale: str | None = None) -> Path:
    """Redraw every law's newest verdict (at ``scale``, or any) and write ``out_dir/almanac.html``."""
    out_dir = Path(out_dir)
    entries = store.latest_verdicts(scale)
    for _scale, verdict in entries:
        render_verdict(verdict, out_dir)
    page = out_dir / "almanac.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(_page(entries, store.path), encoding="utf-8")
    return page


def _page(entries: Sequence[tuple[str, Verdict]], store_path: str) -> str:
    esc = html.escape
    rows, sections = [], []
    for scale, v in entries:
        word = verdict_word(v.holds, v.diverged)
        rows.append(
            f"<tr><td><a href='#{esc(v.law)}'>{esc(v.law)}</a></td><td>{v.pillar}: {esc(PILLARS.get(v.pillar, ''))}"
            f"</td><td>{esc(v.claim)}</td><td>{esc(short(v.predicted))}</td><td>{esc(short(v.measured))}</td>"
            f"<td>{esc(short(v.error))}</td><td>{esc(short(v.tolerance))}</td><td class='{word}'>{word}</td>"
            f"<td>{v.seconds:.1f} s ({esc(scale)})</td></tr>"
        )
        checks = "".join(
            f"<tr><td>{esc(c.name)}</td><td class='{verdict_word(c.holds, False)}'>{verdict_word(c.holds, False)}"
            f"</td><td>{esc(c.metric)}</td><td>{esc(short(c.error, 4))}</td><td>{esc(short(c.tolerance))}</td>"
            f"<td>{esc(c.rationale)}</td></tr>"
            for c in v.checks
        )
        img = f"<img src='figures/{esc(v.law)}.png' alt='{esc(v.law)} figure'>" if v.figure else ""
        said = ""
        if v.prediction:
            p = v.prediction
            said = (
                f"<p><b>Prediction</b> ({esc(p.quantity)}): <code>{esc(p.formula)}</code>. Assumes: "
                f"{esc(p.assumptions)}. Source: {esc(p.reference)}.</p>"
            )
        if v.measurement:
            said += f"<p><b>Measurement:</b> {esc(v.measurement)}.</p>"
        sections.append(
            f"<section id='{esc(v.law)}'><h2>{esc(v.law)} <span class='{word}'>{word}</span></h2>"
            f"<p>{esc(v.claim)}</p><p class='small'>Reference: {esc(v.reference)}</p>"
            f"{said}<p><b>Regime:</b> {esc(v.regime)}</p>{img}<table><tr><th>check</th><th>verdict</th><th>metric</th>"
            f"<th>error</th><th>tolerance</th><th>rationale</th></tr>{checks}</table>"
            f"<p class='small'>runs {esc(short(list(v.runs), items=8))} in the store; config "
            f"<code>{esc(short(dict(v.config), items=8))}</code></p></section>"
        )
    held = sum(v.holds for _, v in entries)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>lmech almanac</title><style>{_CSS}</style>"
        f"</head><body><h1>lmech almanac</h1><p>{held} of {len(entries)} laws hold. Drawn from "
        f"<code>{esc(store_path)}</code> on {time.strftime('%Y-%m-%d %H:%M')}.</p><table><tr><th>law</th>"
        f"<th>pillar</th><th>claim</th><th>predicted</th><th>measured</th><th>error</th><th>tolerance</th>"
        f"<th>verdict</th><th>time</th></tr>{''.join(rows)}</table>{''.join(sections)}</body></html>"
    )
