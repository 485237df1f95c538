"""The ``lmech`` command: laws, check, almanac, runs, show, report, fit.

Exit status: 0 when the law holds (or the command succeeded), 1 when a law fails or a run
diverged, 2 on bad input (with a message naming the problem, never a traceback).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from lmech.config import describe_fields, parse_assignments
from lmech.core import LmechInputError, Verdict, describe_comparison
from lmech.laws import REGISTRY
from lmech.report import render_verdict, short, verdict_word, write_almanac
from lmech.store import RunStore
from lmech.sweep import check as run_check

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="lmech: predict, measure, compare and show the laws of learning mechanics.",
)
out_console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

DEFAULT_OUT = Path("lmech-runs")
StoreOpt = Annotated[
    Path | None, typer.Option("--store", help="run store file [default: OUT/lmech.db or $LMECH_STORE]")
]
OutOpt = Annotated[Path, typer.Option("--out", help="folder for the store, figures and HTML")]
ScaleOpt = Annotated[bool, typer.Option("--quick/--full", help="quick scale (default) or the reference scale")]
JobsOpt = Annotated[int, typer.Option("--jobs", min=1, help="runs in parallel on a local process pool")]


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input -> message and exit 2; Ctrl-C -> exit 130 (finished runs stay in the store)."""
    try:
        yield
    except LmechInputError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # writing figures or pages
        err_console.print(f"[bold red]error:[/] cannot write {exc.filename or 'output'}: {exc.strerror}", markup=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: finished runs are kept in the store; run the command again to complete")
        raise typer.Exit(130) from None


def output_folder(out: Path) -> Path:
    """``--out`` must be a folder or not exist yet (checked before any training)."""
    if out.exists() and not out.is_dir():
        raise LmechInputError(f"--out {out} is a file; give a folder (it is created if missing)")
    return out


def store_path(store: Path | None, out: Path) -> Path:
    if store is not None:
        return store
    env = os.environ.get("LMECH_STORE")
    return Path(env) if env else out / "lmech.db"


@contextmanager
def progress_bar(label: str) -> Iterator:
    """A rich progress bar on stderr; yields a callback (done, total)."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        yield update


@app.command()
def laws(
    detail: Annotated[bool, typer.Option("--detail", help="also each law's comparisons and config keys")] = False,
) -> None:
    """List the registered laws."""
    table = Table(title="lmech laws")
    table.add_column("id", no_wrap=True)
    for col in ("pillar", "claim", "reference", "quick"):
        table.add_column(col, overflow="fold")
    for law in REGISTRY:
        table.add_row(law.id, str(law.pillar), law.claim, law.reference, f"~{law.quick_seconds:.0f} s")
    out_console.print(table)
    if detail:
        for law in REGISTRY:
            out_console.print(f"\n[bold]{law.id}[/] comparisons:")
            for comparison in law.comparisons:
                out_console.print(f"  {describe_comparison(comparison)}", soft_wrap=True)
            out_console.print("config keys (quick defaults; --set key=value):")
            out_console.print(describe_fields(law.config, law.scales["quick"]), soft_wrap=True, markup=False)


@app.command()
def check(
    law: Annotated[str, typer.Argument(help="law id (see `lmech laws`)")],
    quick: ScaleOpt = True,
    seed: Annotated[int, typer.Option("--seed", min=0, help="base random seed")] = 0,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a config key: key=value (repeatable)")
    ] = None,
    jobs: JobsOpt = 1,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
    store: StoreOpt = None,
    out: OutOpt = DEFAULT_OUT,
) -> None:
    """Check one law: exit 0 when it holds, 1 when it does not (or a run diverged), 2 on bad input."""
    with user_errors():
        output_folder(out)
        overrides = parse_assignments(set_ or [])
        with RunStore(store_path(store, out)) as db, progress_bar(f"{law}: runs") as update:
            verdict = run_check(law, "quick" if quick else "full", seed, overrides, db, jobs=jobs, progress=update)
        render_verdict(verdict, out)
    if as_json:
        sys.stdout.write(json.dumps(verdict.summary()) + "\n")
    else:
        show_verdict(verdict)
    raise typer.Exit(0 if verdict.holds else 1)


def show_verdict(v: Verdict) -> None:
    word = verdict_word(v.holds, v.diverged)
    color = "green" if v.holds else "red"
    out_console.print(f"[bold]{v.law}[/]: [bold {color}]{word}[/]  ({v.seconds:.1f} s, runs {short(list(v.runs))})")
    table = Table(show_edge=False)
    table.add_column("check", no_wrap=True)
    for col in ("verdict", "predicted", "measured", "error", "tolerance"):
        table.add_column(col, overflow="fold")
    for c in v.checks:
        table.add_row(
            c.name,
            verdict_word(c.holds, False),
            short(c.predicted, items=3),
            short(c.measured, items=3),
            short(c.error, 4),
            short(c.tolerance),
        )
    out_console.print(table)
    for c in v.checks:
        out_console.print(f"  {c.name}: {c.metric}; {c.rationale}", soft_wrap=True, style="dim")
    if v.prediction:
        out_console.print(f"prediction: {v.prediction.formula} ({v.prediction.assumptions})", soft_wrap=True)
    if v.measurement:
        out_console.print(f"measurement: {v.measurement}", soft_wrap=True)
    out_console.print(f"regime: {v.regime}", soft_wrap=True)


@app.command()
def almanac(
    quick: ScaleOpt = True,
    jobs: JobsOpt = 1,
    store: StoreOpt = None,
    out: OutOpt = DEFAULT_OUT,
) -> None:
    """Check every registered law, print the verdict table, write OUT/almanac.html with figures."""
    scale = "quick" if quick else "full"
    verdicts = []
    with user_errors(), RunStore(store_path(store, output_folder(out))) as db:
        for law in REGISTRY:
            with progress_bar(f"{law.id}: runs") as update:
                verdict = run_check(law.id, scale, 0, None, db, jobs=jobs, progress=update)
            verdicts.append(verdict)
            err_console.print(f"{law.id}: {verdict_word(verdict.holds, verdict.diverged)} ({verdict.seconds:.1f} s)")
        page = write_almanac(db, out, scale)
    table = Table(title=f"lmech almanac ({scale})")
    table.add_column("law", no_wrap=True)
    for col in ("pillar", "verdict", "headline check", "error", "tolerance", "time"):
        table.add_column(col, overflow="fold")
    for v in verdicts:
        table.add_row(
            v.law,
            str(v.pillar),
            verdict_word(v.holds, v.diverged),
            v.headline.name,
            short(v.error, 4),
            short(v.tolerance),
            f"{v.seconds:.1f} s",
        )
    out_console.print(table)
    out_console.print(f"{sum(v.holds for v in verdicts)} of {len(verdicts)} laws hold; page: {page}")
    raise typer.Exit(0 if all(v.holds for v in verdicts) else 1)


@app.command()
def runs(
    law: Annotated[str | None, typer.Option("--law", help="only runs of this law")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    store: StoreOpt = None,
    out: OutOpt = DEFAULT_OUT,
) -> None:
    """List the runs in the store, newest first."""
    with user_errors(), RunStore(_existing(store_path(store, out))) as db:
        rows = db.runs(law, limit)
    table = Table(title=f"runs in {store_path(store, out)}")
    for col in ("id", "law", "seed", "status", "diverged at", "seconds", "rows", "key"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["law"],
            str(r["seed"]),
            r["status"],
            short(r["diverged_step"]),
            f"{r['seconds']:.2f}",
            str(r["rows"]),
            r["key"][:10],
        )
    out_console.print(table)


@app.command()
def show(
    run_id: Annotated[int, typer.Argument(help="run id (see `lmech runs`)")],
    as_json: Annotated[bool, typer.Option("--json", help="print the run and all its rows as JSON")] = False,
    store: StoreOpt = None,
    out: OutOpt = DEFAULT_OUT,
) -> None:
    """Show one run: its config, status and recorded quantities."""
    with user_errors(), RunStore(_existing(store_path(store, out))) as db:
        rec = db.run(run_id)
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "id": rec.id,
                    "key": rec.key,
                    "config": rec.config,
                    "status": rec.status,
                    "diverged_step": rec.diverged_step,
                    "seconds": rec.seconds,
                    "rows": [list(r) for r in rec.rows],
                }
            )
            + "\n"
        )
        return
    out_console.print(
        f"[bold]run {rec.id}[/] ({rec.status}"
        + (f" at step {rec.diverged_step}" if rec.diverged_step is not None else "")
        + f", {rec.seconds:.2f} s, key {rec.key})"
    )
    out_console.print(f"config: {json.dumps(rec.config)}", soft_wrap=True)
    table = Table(show_edge=False)
    for col in ("quantity", "points", "first step", "first", "last step", "last"):
        table.add_column(col)
    for name in dict.fromkeys(r.name for r in rec.rows):
        steps, values = rec.series(name)
        table.add_row(name, str(len(steps)), str(steps[0]), short(values[0]), str(steps[-1]), short(values[-1]))
    out_console.print(table)


@app.command()
def report(
    store: StoreOpt = None,
    out: OutOpt = DEFAULT_OUT,
    scale: Annotated[str | None, typer.Option("--scale", help="only verdicts at this scale (quick or full)")] = None,
) -> None:
    """Redraw every figure and OUT/almanac.html from the store alone."""
    with user_errors(), RunStore(_existing(store_path(store, output_folder(out)))) as db:
        if scale not in (None, "quick", "full"):
            raise LmechInputError(f"--scale must be quick or full; got {scale!r}")
        page = write_almanac(db, out, scale)
    out_console.print(f"wrote {page}")


@app.command("fit")
def fit_table(
    file: Annotated[Path, typer.Argument(help="CSV of runs: the form's variables (e.g. N, D) and loss")],
    form_name: Annotated[
        str, typer.Option("--form", help="power_law, kaplan_n, kaplan_d, chinchilla, ...")
    ] = "chinchilla",
    bootstrap: Annotated[int, typer.Option("--bootstrap", min=0, help="bootstrap refits for the intervals")] = 200,
    level: Annotated[float, typer.Option("--level", min=0.01, max=0.99, help="interval level")] = 0.8,
    seed: Annotated[int, typer.Option("--seed", min=0, help="bootstrap seed")] = 0,
    compute: Annotated[
        list[float] | None,
        typer.Option("--compute", help="FLOPs for the allocation [default: 1x, 10x, 100x the data's]"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object on stdout")] = False,
) -> None:
    """Fit a scaling law to your own runs; for chinchilla, also the compute-optimal N*(C), D*(C) under C = 6 N D."""
    from lmech import fit as fitting
    from lmech.core import to_jsonable

    with user_errors():
        spec = fitting.form(form_name)
        try:
            result = fitting.fit(spec, fitting.read_csv(file, spec), bootstrap=bootstrap, level=level, seed=seed)
        except fitting.FitError as exc:
            if exc.partial is not None:
                err_console.print(f"partial fit (not trusted): {short(exc.partial.params)}", soft_wrap=True)
            raise
        summary = result.summary()
        allocation = None
        if spec.name == "chinchilla":
            largest = float((6 * result.data["N"] * result.data["D"]).max())
            budgets = compute or [largest, 10 * largest, 100 * largest]
            allocation = fitting.compute_optimal(result, budgets)
            summary["compute_optimal"] = {
                "compute": allocation.compute,
                "N": allocation.n,
                "N_interval": allocation.n_interval,
                "D": allocation.d,
                "D_interval": allocation.d_interval,
                "loss": allocation.loss,
                "loss_interval": allocation.loss_interval,
                "exponents": dict(zip(("N", "D"), fitting.exponents(result.params), strict=True)),
            }
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(summary)) + "\n")
        return
    out_console.print(f"[bold]{spec.formula}[/] fitted to {summary['points']} runs ({spec.reference})")
    table = Table(show_edge=False)
    for col in ("parameter", "value", f"{level:.0%} interval"):
        table.add_column(col)
    for name, value in result.params.items():
        lo, hi = result.intervals.get(name, (float("nan"),) * 2)
        table.add_row(name, f"{value:.4g}", f"[{lo:.4g}, {hi:.4g}]")
    out_console.print(table)
    out_console.print(f"std of log residuals {result.residual_std:.3g}; {summary['bootstrap']} bootstrap refits")
    if allocation is not None:
        a, b = fitting.exponents(result.params)
        out_console.print(f"compute-optimal (C = 6 N D): N* ~ C^{a:.3f}, D* ~ C^{b:.3f}")
        table = Table(show_edge=False)
        for col in ("C (FLOPs)", "N*", "D*", "loss"):
            table.add_column(col)
        for i, c in enumerate(allocation.compute):
            cells = [
                f"{v[i]:.3g} [{lo[i]:.3g}, {hi[i]:.3g}]"
                for v, (lo, hi) in (
                    (allocation.n, allocation.n_interval),
                    (allocation.d, allocation.d_interval),
                    (allocation.loss, allocation.loss_interval),
                )
            ]
            table.add_row(f"{c:.3g}", *cells)
        out_console.print(table)


def _existing(path: Path) -> Path:
    if not path.exists():
        raise LmechInputError(f"no store at {path}; run `lmech check LAW` first or pass --store PATH")
    return path


def main() -> None:
    app()


if __name__ == "__main__":
    main()
