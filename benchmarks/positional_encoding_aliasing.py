"""Do distinct positions get distinct encodings? Sinusoidal (sin and cos pairs) against sin only.

Each (sin, cos) pair of dimensions is a point on a circle at angle p * w_i, which pins down
p modulo the pair's period. With sin in both dimensions the point moves on a line instead,
and p, q with p * w_i + q * w_i = pi (mod 2 pi) land on the same point: the encoding
folds over, and positions far apart can look alike. The table gives, per variant, how close
the nearest other position comes over the full encoding, and how many pairs of positions
nearly coincide in the fastest dimensions (where a model reads fine position differences);
the figure shows both matrices and the position-to-position distances over the fastest
pairs: with sin and cos they depend only on p - q (diagonal stripes); with sin only, folds
add the dark anti-diagonal lines (p + q constant).

    python benchmarks/positional_encoding_aliasing.py [--quick] [--figure benchmarks/figures/positional_encoding.png]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from zoo.modules.positional_encoding import sinusoidal_table

FAST_DIMS = 8  # the four fastest-turning pairs, where the folds show
NEAR = 0.25  # adjacent positions are 1.74 apart there
FIGURE = Path(__file__).resolve().parent / "figures" / "positional_encoding.png"


def nearest_other(table: torch.Tensor) -> torch.Tensor:
    """For every position, the distance to the closest other position's encoding."""
    distances = torch.cdist(table, table)
    distances.fill_diagonal_(float("inf"))
    return distances.min(dim=1).values


def draw(tables: dict[str, torch.Tensor], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(10, 8.5))
    for column, (name, table) in enumerate(tables.items()):
        top, bottom = axes[0, column], axes[1, column]
        image = top.imshow(table.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
        top.set(title=f"{name}: encoding", xlabel="position", ylabel="dimension")
        figure.colorbar(image, ax=top)
        fast = table[:, :FAST_DIMS]
        image = bottom.imshow(torch.cdist(fast, fast), cmap="magma", interpolation="nearest")
        bottom.set(
            title=f"{name}: distance between positions, dims 0-{FAST_DIMS - 1}", xlabel="position", ylabel="position"
        )
        figure.colorbar(image, ax=bottom)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    print(f"figure: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the figure's sizes only (it is fast either way)")
    parser.add_argument("--positions", type=int, default=1024)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--figure", type=Path, default=None, help=f"save the figure (the README's is {FIGURE})")
    args = parser.parse_args()
    length, d_model = (128, 64) if args.quick else (args.positions, args.d_model)
    tables = {
        "sin and cos": sinusoidal_table(length, d_model),
        "sin only": sinusoidal_table(length, d_model, sin_only=True),
    }

    print(f"{length} positions, d_model {d_model}")
    print(
        f"{'variant':<14}{'nearest other position, full encoding':>40}{f'pairs closer than {NEAR} in dims 0-{FAST_DIMS - 1}':>36}"
    )
    summary = {}
    for name, table in tables.items():
        nearest = nearest_other(table)
        fast = table[:, :FAST_DIMS]
        look_alike = int((torch.cdist(fast, fast) < NEAR).triu(diagonal=1).sum())
        print(f"{name:<14}{f'min {nearest.min():.3f}, median {nearest.median():.3f}':>40}{look_alike:>36}")
        summary[name] = {
            "nearest_min": round(float(nearest.min()), 4),
            "nearest_median": round(float(nearest.median()), 4),
            "look_alike_pairs_fast_dims": look_alike,
        }
    if args.figure:
        draw({name: table[:100, :64] for name, table in tables.items()}, args.figure)
    print(
        json.dumps(
            {
                "benchmark": "positional_encoding_aliasing",
                "quick": args.quick,
                "positions": length,
                "d_model": d_model,
                **summary,
            }
        )
    )


if __name__ == "__main__":
    main()
