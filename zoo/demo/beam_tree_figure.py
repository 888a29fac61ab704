"""A beam search drawn as a tree (zoo/generation/beam_tree.py): one column per step, each node its token and the
log-probability of its path; the beams kept in black, the pruned extensions grey, finished hypotheses green and
the n-best numbered. The lecture's figure and the demo page's "beam search" view both come from here."""

from __future__ import annotations

from collections.abc import Callable

from matplotlib.figure import Figure  # not pyplot: no global figure registry, safe in a server's threads

from zoo.generation.beam_tree import ROOT, BeamTree

COLOURS = {"root": "black", "kept": "black", "stopped": "tab:orange", "finished": "tab:green", "pruned": "0.7"}


def shown(text: str) -> str:
    """A token as a label: spaces and line breaks made visible."""
    return repr(text)[1:-1].replace(" ", "\u2423") or "''"


def tree_layout(tree: BeamTree, up_to_step: int) -> dict[int, float]:
    """Node -> its height: leaves one row apart in depth-first order (best child first), a parent at the middle
    of its children, so no two edges cross."""
    heights: dict[int, float] = {}
    next_row = 0

    def place(index: int) -> float:
        nonlocal next_row
        children = [i for i in tree.children(index) if tree.nodes[i].step <= up_to_step]
        if not children:
            heights[index] = next_row
            next_row += 1
        else:
            children.sort(key=lambda i: -tree.nodes[i].log_prob)
            heights[index] = sum(place(i) for i in children) / len(children)
        return heights[index]

    place(ROOT)
    return heights


def beam_tree_figure(
    tree: BeamTree, token_text: Callable[[int], str], up_to_step: int | None = None, title: str = ""
) -> Figure:
    """The tree up to ``up_to_step`` (default: the whole search)."""
    up_to_step = tree.steps if up_to_step is None else min(up_to_step, tree.steps)
    heights = tree_layout(tree, up_to_step)
    rows = max(heights.values()) + 1
    figure = Figure(figsize=(1.5 + 1.25 * up_to_step, 1 + 0.28 * rows))
    axes = figure.subplots()
    for index, y in heights.items():
        node = tree.nodes[index]
        colour = COLOURS[node.fate]
        if node.parent is not None:
            axes.plot([node.step - 1, node.step], [heights[node.parent], y], color=colour, lw=0.8, zorder=1)
        label = "start" if node.token is None else shown(token_text(node.token))
        if node.token is not None:
            label += f"  {node.log_prob:.2f}"
        if node.rank is not None:
            label = f"#{node.rank} {label}"
        axes.text(
            node.step,
            y,
            label,
            color=colour,
            fontsize=7,
            ha="center",
            va="center",
            fontweight="bold" if node.rank is not None else "normal",
            bbox={"facecolor": "white", "edgecolor": colour, "boxstyle": "round,pad=0.2", "lw": 0.5},
            zorder=2,
        )
    axes.set_xlim(-0.6, up_to_step + 0.6)
    axes.set_ylim(rows - 0.5, -0.5)
    axes.set_xticks(range(up_to_step + 1))
    axes.set_xlabel("step")
    axes.set_yticks([])
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)
    key = (
        "each node: token, log-probability of its path. black: kept beams; green: finished (<eos> in the top K); "
        "grey: pruned;\norange: kept, but no continuation ranked among the next step's best (or the search ended); "
        "#1, #2, ...: the n-best that generate returns"
    )
    axes.set_title(f"{title}\n{key}" if title else key, fontsize=8)
    figure.tight_layout()
    return figure
