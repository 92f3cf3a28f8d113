"""PNG figures for ``attribution eval``: step accuracy against tolerance, and ROC curves.

Figures are drawn with matplotlib's object API on the Agg canvas, so no display is
needed and no global backend is switched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["plot_roc", "plot_tolerance_curve"]

_DPI = 150


def plot_tolerance_curve(curves: Mapping[str, Sequence[float]], path: str | Path, ks: Sequence[int]) -> Path:
    """Step accuracy against tolerance ``k``, one line per method.

    Parameters
    ----------
    curves : mapping of str to sequence of float
        Method name -> accuracy (0..1) at each tolerance in ``ks``: the share of runs
        whose predicted step lies within ``k`` steps of the gold mistake step.
    path : str or Path
        Where to write the PNG.
    ks : sequence of int
        The tolerances, in steps.
    """
    if not curves:
        raise ValueError(
            "The 'curves' parameter of plot_tolerance_curve must name at least one method. Got {} instead."
        )
    for name, accs in curves.items():
        if len(accs) != len(ks):
            raise ValueError(
                f"The 'curves' parameter of plot_tolerance_curve must give one accuracy per k ({len(ks)}). "
                f"Got {len(accs)} for {name!r} instead."
            )
    fig, ax = _figure()
    for name, accs in curves.items():
        ax.plot(list(ks), list(accs), marker="o", markersize=4, linewidth=1.8, label=name)
    ax.set_xlabel("tolerance k (steps)")
    ax.set_ylabel("step accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(list(ks))
    ax.set_title("Step accuracy within k steps of the gold mistake")
    ax.legend(frameon=False)
    return _save(fig, path)


def plot_roc(y_true: Sequence[int], scores_by_method: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """ROC curves of success prediction, one per method, with the AUC in the legend.

    Parameters
    ----------
    y_true : sequence of {0, 1}
        1 where the run succeeded. Both outcomes must occur.
    scores_by_method : mapping of str to sequence of float
        Method name -> one score per run, higher meaning more likely to succeed.
    path : str or Path
        Where to write the PNG.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    y = [int(v) for v in y_true]
    if len(set(y)) != 2:
        raise ValueError(
            f"The 'y_true' parameter of plot_roc must hold both outcomes (0 and 1). Got {sorted(set(y))} instead."
        )
    if not scores_by_method:
        raise ValueError("The 'scores_by_method' parameter of plot_roc must name at least one method. Got {} instead.")
    fig, ax = _figure((5, 4.8))
    for name, scores in scores_by_method.items():
        if len(scores) != len(y):
            raise ValueError(
                f"The 'scores_by_method' parameter of plot_roc must give one score per run ({len(y)}). "
                f"Got {len(scores)} for {name!r} instead."
            )
        fpr, tpr, _ = roc_curve(y, list(scores))
        auc = roc_auc_score(y, list(scores))
        ax.plot(fpr, tpr, linewidth=1.8, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="#a1a1aa", linewidth=1, label="chance")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.02)
    ax.set_aspect("equal")
    ax.set_title("Success prediction")
    ax.legend(frameon=False, loc="lower right")
    return _save(fig, path)


def _figure(size: tuple[float, float] = (6, 4.2)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.grid(True, color="#e4e4e7", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, format="png")
    return path
