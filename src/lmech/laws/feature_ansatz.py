"""feature-ansatz: at its best-test checkpoint an MLP's first-layer Gram matrix W_1^T W_1 matches its AGOP.

Claim (Radhakrishnan, Beaglehole, Pandit & Belkin 2024, Science 383, "Mechanism for feature learning in neural
networks and backpropagation-free machine learning models", eq. of the neural feature ansatz; arXiv 2212.13881):
after training, W_1^T W_1 ∝ AGOP = (1/n) sum_i grad_x f(x_i) grad_x f(x_i)^T, measured by the Pearson correlation of
the matrices' entries; it "often makes strikingly accurate predictions" for the top eigenvectors. Two-layer linear
nets satisfy it with AGOP^{1/2} (same paper; Beaglehole, Mitliagkas & Agarwala 2024), so both powers are reported.
Measurement: x ~ N(0, I_20), a rank-3 target y = z_1 z_2 + sin(2 z_3), z = U^T x with U a Haar-random (20, 3)
orthonormal frame; ``nets`` 2-hidden-layer ReLU MLPs (width 64, first layer initialised at 0.1x He, the rest He),
full-batch Adam (lr 1e-3) on the half-MSE, trained together as a stacked ensemble. Every ``eval_every`` steps: the
relative test MSE on fresh points, AGOP on ``probe`` training points (vmap of jacrev), and the NFA scores
(lmech.observables.feature_ansatz): Pearson correlation with AGOP (``corr``) and AGOP^{1/2} (``corr_sqrt``), the
uncentred cosine, the correlation of the traceless parts, the top-3 eigenspace overlap ||U_3^T V_3||_F^2 / 3 of
W_1^T W_1 and AGOP, and the overlap of W_1^T W_1's top-3 eigenvectors with the target frame U.
Memorisation regime (reported and contrasted): 200 training points with pure-noise labels (Gaussian, the target's
variance), standard He init, trained ``memorize_steps`` steps to interpolation; scored at the end of training.
Verdict, from means over nets: at the best-test checkpoint corr > 0.7 and overlap > 0.8; gains over init of at least
0.15 (corr) and 0.3 (overlap); the memorisation overlap at least 0.3 below the learning one.
Measured (quick, 4 nets, ~5 s CPU; seeds 0 / 1 / 2), mean over nets at the best-test checkpoint (step 400 / 400 /
390 of 400: the test MSE is still falling slowly, 0.058 / 0.068 / 0.083 of Var y): corr 0.946 / 0.933 / 0.944 (at
init 0.60 / 0.62 / 0.60), corr with AGOP^{1/2} 0.969 / 0.961 / 0.967 (init 0.86 / 0.87 / 0.86), traceless 0.962 /
0.952 / 0.957 (init 0.37 / 0.37 / 0.33), top-3 overlap 0.986 / 0.980 / 0.986 (init 0.46 / 0.39 / 0.39), W_1's top-3
on the target frame 0.985 / 0.980 / 0.986 (init 0.15, chance 0.15). Memorisation at the end (train MSE ~1e-14):
corr 0.834 / 0.822 / 0.837, overlap 0.443 / 0.373 / 0.424, target frame 0.18 / 0.15 / 0.15. Seeds 3-5: best corr
0.89-0.92, overlap 0.97-0.98, memorisation overlap 0.34-0.46. Here AGOP^{1/2} fits W_1^T W_1 better than AGOP
(0.96-0.97 vs 0.93-0.95), as the power-1/2 variant suggests; its init value is higher too.
Full (width 128, 8000 points, 8 nets, 600 steps; memorisation 3000 steps; seed 0, ~100 s CPU): corr 0.965 (init
0.61), AGOP^{1/2} 0.970, traceless 0.981 (init 0.256, matching the calibration's 0.26), overlap 0.995 (init 0.37),
target frame 0.995, test MSE 0.014; memorisation corr 0.80, overlap 0.39, target frame 0.13.
Where it does not hold: the plain Pearson correlation is high for any two near-isotropic PSD matrices (their 20
diagonal entries stand out of 400), so it is ~0.6 already at init (a wide random W_1 has W_1^T W_1 ~ c I, and
AGOP = W_1^T G W_1 shares that factor) and ~0.83 in the memorisation regime: by the correlation bar alone (> 0.7) a
net that memorises noise "satisfies" the ansatz. Its content, the eigenvectors, fails there (overlap ~0.4 = its init
value; W_1's top eigenvectors at chance on the target frame). The same holds for the real target with 200 points
and He init (``n_train=200, first_layer_scale=1``): corr 0.75-0.77 passes, overlap 0.36-0.43 fails, test MSE ~1
(seeds 0-2, 2 nets). The traceless correlation (~0.37 at init, calibration 0.26) removes the isotropic part but
still rises to ~0.56 when memorising. With full-batch Adam the scores plateau once the training set is fit and do
not degrade later here (seed 0, 1500 steps: corr 0.93, overlap 0.98 at best step ~1260), unlike the calibration's
drop with overfitting (0.71 / 0.51 at step 3000).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch.func import vmap

from lmech.config import LawConfig
from lmech.core import (
    DATA,
    INIT,
    Evaluation,
    Figure,
    Law,
    Panel,
    Prediction,
    Row,
    RunRecord,
    RunResult,
    RunSpec,
    Series,
    Threshold,
    generator,
    random_orthogonal,
)
from lmech.nets import MLP, ensemble
from lmech.nets.functional import member
from lmech.observables.feature_ansatz import agop, ansatz_scores, neural_feature_matrix, psd_power, subspace_overlap
from lmech.train import adam, mlp_gradients, torch_threads

ID = "feature-ansatz"
RANK = 3  # the target depends on x through 3 directions; overlaps use the top-3 eigenvectors
TEST = 1  # data stream of the test points (0: training points)
SCORES = ("corr", "corr_sqrt", "cosine", "corr_traceless", "overlap", "target_overlap")
Regime = Literal["learn", "memorize"]


class Config(LawConfig):
    dim: int = Field(20, ge=RANK + 1, le=200, description="input dimension d (x ~ N(0, I_d))")
    width: int = Field(64, ge=4, le=2048, description="hidden width of the 2-hidden-layer ReLU MLP")
    n_train: int = Field(2000, ge=10, le=100000, description="training points of the learning regime")
    n_test: int = Field(1000, ge=10, le=100000, description="fresh test points for the best-test checkpoint")
    steps: int = Field(400, ge=1, le=100000, description="full-batch Adam steps, learning regime")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    first_layer_scale: float = Field(0.1, gt=0, le=10, description="first-layer init multiplier (learning regime)")
    nets: int = Field(4, ge=2, le=64, description="nets per regime (init seeds); checks use the mean")
    eval_every: int = Field(20, ge=1, description="steps between measurements")
    probe: int = Field(500, ge=10, le=100000, description="training points the AGOP averages over")
    memorize_n_train: int = Field(200, ge=10, le=100000, description="noise-label training points (memorisation)")
    memorize_steps: int = Field(1000, ge=1, le=100000, description="full-batch Adam steps, memorisation regime")


def dataset(seed: int, dim: int, n: int, stream: int, noise: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x (n, d), y (n, 1), U (d, 3)): y = z_1 z_2 + sin(2 z_3), z = U^T x (float32 data, float64 frame); with
    ``noise`` the labels are independent Gaussians of the same variance (Var y = 1 + (1 - e^-8) / 2 = 1.4998)."""
    frame = random_orthogonal(dim, RANK, generator(seed, DATA))  # the same frame for training and test points
    gen = generator(seed, DATA, stream, int(noise))
    x = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    z = x @ frame  # (n, 3)
    y = z[:, 0] * z[:, 1] + torch.sin(2 * z[:, 2])
    if noise:
        y = torch.randn(n, generator=gen, dtype=torch.float64) * math.sqrt(1.5 - 0.5 * math.exp(-8))
    return x.float(), y.float()[:, None], frame


def plan(cfg: Config) -> list[tuple[RunSpec, ...]]:
    shared = cfg.model_dump(exclude={"nets"})
    return [
        tuple(RunSpec(ID, LAW.version, {**shared, "regime": regime, "net": k}) for k in range(cfg.nets))
        for regime in ("learn", "memorize")
    ]


def execute(configs: Sequence[Mapping[str, Any]]) -> list[RunResult]:
    """Train one regime's nets together as a stacked ensemble; measure each net's NFA scores on a schedule."""
    start = time.perf_counter()
    c = configs[0]
    memorize = c["regime"] == "memorize"
    n, steps = (c["memorize_n_train"], c["memorize_steps"]) if memorize else (c["n_train"], c["steps"])
    x, y, frame = dataset(c["seed"], c["dim"], n, 0, memorize)
    x_test, y_test, _ = dataset(c["seed"], c["dim"], c["n_test"], TEST, memorize)
    probe = x[: c["probe"]]
    rows: list[list[Row]] = [[] for _ in configs]
    diverged: list[int | None] = [None] * len(configs)
    best: list[tuple[float, int, dict]] = [(math.inf, 0, {}) for _ in configs]
    with torch_threads(1):
        nets = [MLP(c["dim"], c["width"], 2, 1, gen=generator(c["seed"], INIT, cfg["net"])) for cfg in configs]
        fn, params = ensemble(nets)
        if not memorize:
            params["layers.0.weight"] = params["layers.0.weight"] * c["first_layer_scale"]
        forward, step_fn, opt = vmap(fn, in_dims=(0, None)), mlp_gradients(2, "relu", "mse"), adam(c["lr"])
        state = opt.init(params)
        for step in range(steps + 1):
            grads, losses = step_fn(params, x, y)  # losses (E,) at the current parameters
            if step % c["eval_every"] == 0 or step == steps:
                with torch.no_grad():
                    test = ((forward(params, x_test) - y_test) ** 2).mean((1, 2)) / y_test.var()  # (E,)
                for e in range(len(configs)):
                    if diverged[e] is None and not (math.isfinite(losses[e]) and math.isfinite(test[e])):
                        diverged[e] = step  # a diverged net is a recorded outcome; the others train on
                    if diverged[e] is None:
                        values, mats = _measure(fn, member(params, e), probe, frame)
                        values |= {"train_mse": 2 * float(losses[e]) / float(y.var()), "test_mse": float(test[e])}
                        rows[e] += [Row(step, k, v) for k, v in values.items()]
                        if values["test_mse"] < best[e][0] or memorize:  # memorisation: the final state
                            best[e] = (values["test_mse"], step, mats)
            if step == steps or all(d is not None for d in diverged):
                break
            params, state = opt.update(grads, state, params)
    for e, (_mse, step, mats) in enumerate(best):
        rows[e].append(Row(step, "best_step", float(step)))
        for name, m in mats.items():  # eigenvalues, largest first; the step column holds the index
            rows[e] += [Row(i, f"{name}_eig", float(v)) for i, v in enumerate(torch.linalg.eigvalsh(m).flip(0))]
    seconds = time.perf_counter() - start
    return [
        RunResult("done" if d is None else "diverged", r, seconds / len(configs), d)
        for r, d in zip(rows, diverged, strict=True)
    ]


def _measure(fn, params, probe: torch.Tensor, frame: torch.Tensor) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    """Scores of one net; a dead ReLU net (f constant on the probe, AGOP = 0) has undefined scores, recorded as NaN
    (its checks then fail, they do not crash)."""
    nfm = neural_feature_matrix(params["layers.0.weight"])
    grad_outer = agop(fn, params, probe)
    if torch.count_nonzero(grad_outer) == 0 or torch.count_nonzero(nfm) == 0:
        values = dict.fromkeys(SCORES, math.nan)
    else:
        values = ansatz_scores(nfm, grad_outer, RANK) | {"target_overlap": subspace_overlap(nfm, frame)}
    return values, {"nfm": nfm, "agop": grad_outer, "agop_sqrt": psd_power(grad_outer, 0.5)}


def summarize(records: Sequence[RunRecord], regime: Regime) -> dict[str, Any]:
    """Per-net arrays (nets,) of every score at init and at the judged checkpoint (best test for learning, the
    end for memorisation), the mean curves over nets (steps, scores) and the judged steps."""
    recs = sorted((r for r in records if r.config["regime"] == regime), key=lambda r: r.config["net"])
    steps = recs[0].series("corr")[0]
    judged = np.array([r.last("best_step") for r in recs])
    out: dict[str, Any] = {"records": recs, "steps": steps, "judged": judged}
    for name in (*SCORES, "test_mse", "train_mse"):
        curves = np.stack([r.series(name)[1] for r in recs])  # (nets, checkpoints)
        at = np.array([curves[i, list(steps).index(s)] for i, s in enumerate(judged)])
        out[name] = {"init": curves[:, 0], "judged": at, "curve": curves.mean(0)}
    return out


def evaluate(cfg: Config, records: Sequence[RunRecord]) -> Evaluation:
    learn, memo = summarize(records, "learn"), summarize(records, "memorize")
    corr, overlap = learn["corr"], learn["overlap"]
    checks = [
        CORRELATION(corr["judged"].mean()),
        OVERLAP(overlap["judged"].mean()),
        CORRELATION_GAIN((corr["judged"] - corr["init"]).mean()),
        OVERLAP_GAIN((overlap["judged"] - overlap["init"]).mean()),
        MEMORIZATION_GAP(overlap["judged"].mean() - memo["overlap"]["judged"].mean()),
    ]

    def line(s: dict[str, Any], where: str) -> str:
        return ", ".join(f"{k} {_mean(s[k][where])}" for k in (*SCORES, "test_mse", "train_mse"))

    undefined = int(np.isnan(learn["corr"]["judged"]).sum() + np.isnan(memo["corr"]["judged"]).sum())
    regime = (
        (f"{undefined} nets have undefined scores (dead ReLU net, AGOP = 0): the means are NaN; " if undefined else "")
        + f"d = {cfg.dim}, rank-{RANK} target z1 z2 + sin(2 z3), {cfg.nets} nets per regime, 2-hidden-layer ReLU width "
        f"{cfg.width}, full-batch Adam lr {cfg.lr:g}, AGOP on {cfg.probe} training points; chance overlap "
        f"{RANK / cfg.dim:.2f}; mean +- standard error over nets. LEARNING ({cfg.n_train} points, first layer x"
        f"{cfg.first_layer_scale:g}, {cfg.steps} steps), best-test step {_mean(learn['judged'])}: "
        f"{line(learn, 'judged')}; at init: {line(learn, 'init')}. MEMORISATION ({cfg.memorize_n_train} noise "
        f"labels, He init, {cfg.memorize_steps} steps), at the end: {line(memo, 'judged')}; at init: "
        f"{line(memo, 'init')}"
    )
    prediction = Prediction(
        "agreement of W_1^T W_1 with the AGOP at the best-test checkpoint",
        "Pearson correlation > 0.7, top-3 eigenspace overlap > 0.8, both well above init; weaker when memorising",
        "W_1^T W_1 ∝ AGOP = (1/n) sum_i grad_x f(x_i) grad_x f(x_i)^T (neural feature ansatz; power 1/2 for "
        "two-layer linear nets)",
        "an MLP trained by a gradient method that learns a low-dimensional target (feature learning, not lazy)",
        "Radhakrishnan, Beaglehole, Pandit & Belkin 2024 (Science 383), the neural feature ansatz; Beaglehole, "
        "Mitliagkas & Agarwala 2024 (arXiv 2402.05271)",
    )
    measurement = (
        "Pearson correlation of the entries of W_1^T W_1 and AGOP (and AGOP^{1/2}, uncentred cosine, traceless "
        "parts), ||U_3^T V_3||_F^2 / 3 for their top-3 eigenvectors, at the checkpoint of least test MSE"
    )
    figure = Figure("feature-ansatz: W_1^T W_1 against the AGOP over training", _panels(cfg, learn, memo))
    return Evaluation(checks, regime, figure, prediction, measurement)


def _mean(values: np.ndarray) -> str:
    se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return f"{values.mean():.3g} +- {se:.2g}"


def _panels(cfg: Config, learn: dict[str, Any], memo: dict[str, Any]) -> list[Panel]:
    steps = learn["steps"].tolist()
    best = float(learn["judged"].mean())

    def marker(low: float, high: float) -> Series:
        return Series(f"best test (mean step {best:.0f})", [best, best], [low, high], "line", 7)

    def curves(s: dict[str, Any], names: dict[str, str], at: list[float]) -> list[Series]:
        return [Series(label, at, s[k]["curve"].tolist(), "line", i) for i, (k, label) in enumerate(names.items())]

    corr = {"corr": "corr(W1'W1, AGOP)", "corr_sqrt": "corr(W1'W1, AGOP^1/2)", "corr_traceless": "traceless parts"}
    over = {"overlap": "top-3 overlap W1'W1 vs AGOP", "target_overlap": "top-3 of W1'W1 vs target frame U"}
    chance = Series(f"chance {RANK}/{cfg.dim}", [0, steps[-1]], [RANK / cfg.dim] * 2, "hline", 8)
    test = [
        Series(f"{k.split('_')[0]} MSE / Var y", steps, learn[k]["curve"].tolist(), "line", i)
        for i, k in enumerate(("test_mse", "train_mse"))
    ]
    net0 = learn["records"][0]
    spectra = [
        Series(label, *_normalised(net0.series(f"{k}_eig")), "dots", i)
        for i, (k, label) in enumerate({"nfm": "W1'W1", "agop": "AGOP", "agop_sqrt": "AGOP^1/2"}.items())
    ]
    memo_steps = memo["steps"].tolist()
    return [
        Panel(
            "NFA correlation (learning, mean over nets)",
            "Adam steps",
            "Pearson correlation of entries",
            [*curves(learn, corr, steps), Series("bar 0.7", [0], [0.7], "hline", 3), marker(0, 1)],
        ),
        Panel(
            "top-3 eigenspace overlap (learning)",
            "Adam steps",
            "||U_3' V_3||_F^2 / 3",
            [*curves(learn, over, steps), Series("bar 0.8", [0], [0.8], "hline", 3), chance, marker(0, 1)],
        ),
        Panel(
            "test and train error (learning)",
            "Adam steps",
            "MSE / Var(y)",
            [*test, marker(float(learn["train_mse"]["curve"].min()), 1)],
            yscale="log",
        ),
        Panel(
            "spectra at the best-test checkpoint (net 0)",
            "eigenvalue index",
            "eigenvalue / largest",
            spectra,
            yscale="log",
        ),
        Panel(
            f"memorisation ({cfg.memorize_n_train} noise labels)",
            "Adam steps",
            "score",
            [*curves(memo, {"corr": "corr(W1'W1, AGOP)", **over}, memo_steps), chance],
        ),
    ]


def _normalised(series: tuple[np.ndarray, np.ndarray]) -> tuple[list[float], list[float]]:
    index, values = series
    return (index + 1).tolist(), (np.clip(values / max(values.max(), 1e-300), 1e-12, None)).tolist()


CORRELATION = Threshold(
    "corr(W1'W1, AGOP) at best test, mean over nets",
    0.7,
    "the ansatz's own measure (Pearson correlation of the entries, Radhakrishnan et al. 2024) at the bar of the "
    "calibration (0.81, numpy, width 128, n 8000); measured 0.89-0.95 over seeds 0-5, s.e. over 4 nets <= 0.01",
    below=False,
)
OVERLAP = Threshold(
    "top-3 eigenspace overlap of W1'W1 and AGOP at best test, mean over nets",
    0.8,
    "the ansatz is most accurate for the top eigenvectors (Radhakrishnan et al. 2024); calibration 0.91, chance "
    "3/20 = 0.15; measured 0.97-0.99 over seeds 0-5, s.e. over 4 nets <= 0.004",
    below=False,
)
CORRELATION_GAIN = Threshold(
    "gain of corr(W1'W1, AGOP) from init to best test, mean over nets",
    0.15,
    "the plain correlation is ~0.6 already at init (two near-isotropic matrices, and AGOP = W1' G W1 at init), so "
    "the claim is the rise: measured 0.24-0.35 over seeds 0-5; 0.15 is > 3 s.e. of the init mean over 4 nets "
    "(0.015-0.04)",
    below=False,
)
OVERLAP_GAIN = Threshold(
    "gain of the top-3 overlap from init to best test, mean over nets",
    0.3,
    "the init overlap is ~0.4-0.55, not chance 0.15 (AGOP = W1' G W1 shares W1's directions), so the claim is the "
    "rise to the target's subspace: measured 0.44-0.60 over seeds 0-5, init s.e. over 4 nets 0.02-0.05",
    below=False,
)
MEMORIZATION_GAP = Threshold(
    "top-3 overlap: learning (best test) minus memorisation (end), means over nets",
    0.3,
    "fitting noise labels gives the first layer no direction to find: the memorising overlap stays near its init "
    "value (0.34-0.46 vs learning 0.97-0.99, gap 0.52-0.64 over seeds 0-5); 0.3 is > 5 s.e. of either mean",
    below=False,
)


LAW = Law(
    id=ID,
    pillar=5,
    claim="At the best-test checkpoint of a 2-hidden-layer ReLU MLP learning a rank-3 target in d = 20, the first "
    "layer's W1'W1 correlates with the AGOP (> 0.7) and shares its top-3 eigenspace (overlap > 0.8), well above "
    "init; a net memorising noise labels does not share it.",
    reference="Radhakrishnan, Beaglehole, Pandit & Belkin 2024, 'Mechanism for feature learning in neural networks "
    "and backpropagation-free machine learning models' (Science 383); Beaglehole, Mitliagkas & Agarwala 2024",
    config=Config,
    plan=plan,
    execute=execute,
    evaluate=evaluate,
    comparisons=(CORRELATION, OVERLAP, CORRELATION_GAIN, OVERLAP_GAIN, MEMORIZATION_GAP),
    scales={"quick": {}, "full": {"width": 128, "n_train": 8000, "nets": 8, "steps": 600, "memorize_steps": 3000}},
    quick_seconds=6.0,
)
