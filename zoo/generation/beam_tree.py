"""The tree of a beam search, recorded from the search itself: every extension it weighed, step by step.

At each step every open beam proposes its best next tokens, the search keeps the K best extensions (the
"decoder clones" of the lecture) and prunes the rest; an extension that ends with <eos> inside the top K is a
finished hypothesis. ``beam_tree`` runs ``generate`` (strategy beam) with an observer that writes down, for one
input, each of the 2K extensions ranked per step (beam_search.extend): its parent, token, log-probability and
fate, and marks the n-best that ``generate`` returns. The lecture's figure (docs/make_figures.py) and the demo
page's "beam search" view draw this record (zoo/demo/beam_tree_figure.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from zoo.generation.options import Hypothesis

ROOT = 0


@dataclass
class BeamNode:
    step: int  # its depth: 0 for the root (the prompt, or <bos>), t + 1 for an extension at step t
    parent: int | None  # index of the node it extends
    token: int | None  # the token it adds (None at the root)
    log_prob: float  # of the whole path from the root
    # "root"; "kept": a beam for the next step; "finished": <eos> in the top K; "pruned"; "stopped": kept, but none
    # of its continuations ranked among the next step's 2K best, or the search ended there
    fate: str
    rank: int | None = None  # 1, 2, ...: its place in the n-best that generate returns


@dataclass
class BeamTree:
    nodes: list[BeamNode] = field(default_factory=lambda: [BeamNode(0, None, None, 0.0, "root")])
    hypotheses: list[Hypothesis] = field(default_factory=list)  # what generate returned, best first
    beam_size: int = 0

    def path(self, index: int) -> list[int]:
        """The tokens from the root to node ``index``."""
        tokens = []
        while self.nodes[index].parent is not None:
            tokens.append(self.nodes[index].token)
            index = self.nodes[index].parent
        return tokens[::-1]

    def children(self, index: int) -> list[int]:
        return [i for i, node in enumerate(self.nodes) if node.parent == index]

    @property
    def steps(self) -> int:
        return max(node.step for node in self.nodes)


class _Recorder:
    """The observer ``beam_search`` calls after each step, for input 0 of the batch."""

    def __init__(self, tree: BeamTree):
        self.tree = tree
        self.beam_nodes: list[int | None] | None = None  # the node each open beam row of input 0 ends in
        self.step = 0

    def __call__(self, beams, candidates, is_eos, pick, keep) -> None:
        blocks = beams.items.tolist()
        if 0 not in blocks:  # input 0 is done
            return
        r, K = blocks.index(0), beams.scores.shape[1]
        if self.beam_nodes is None:
            self.beam_nodes = [ROOT] * K  # every beam row starts at the root (only the first is live)
        scores, tokens = candidates.scores[r].tolist(), candidates.tokens[r].tolist()
        rows = (candidates.rows[r] - r * K).tolist()
        picked, eos = set(pick[r].tolist()), is_eos[r].tolist()
        self.step += 1
        added = {}
        for j, score in enumerate(scores):
            if score == float("-inf"):
                continue
            fate = "finished" if eos[j] and j < K else "kept" if j in picked else "pruned"
            added[j] = len(self.tree.nodes)
            self.tree.nodes.append(BeamNode(self.step, self.beam_nodes[rows[j]], tokens[j], score, fate))
        self.beam_nodes = [added.get(j) for j in pick[r].tolist()]


def beam_tree(model, src=None, src_pad_mask=None, prompt=None, beam_size: int = 3, **options) -> BeamTree:
    """Beam search of one input (``generate``'s arguments, batch of 1) with its tree of hypotheses."""
    rows = (src if src is not None else prompt).shape[0]
    if rows != 1:
        raise ValueError(f"beam_tree draws the search of one input, got a batch of {rows}")
    tree = BeamTree(beam_size=beam_size)
    options = {"n_best": beam_size, **options, "strategy": "beam", "beam_size": beam_size}
    tree.hypotheses = model.generate(src, src_pad_mask, prompt, beam_observer=_Recorder(tree), **options)[0]
    for rank, hypothesis in enumerate(tree.hypotheses, 1):
        tree.nodes[_node_of(tree, hypothesis.tokens.tolist())].rank = rank
    for index, node in enumerate(tree.nodes):  # a beam the search kept but never extended: it ended there
        if node.fate == "kept" and not tree.children(index) and node.rank is None:
            node.fate = "stopped"
    return tree


def _node_of(tree: BeamTree, tokens: list[int]) -> int:
    index = ROOT
    for token in tokens:
        index = next(i for i in tree.children(index) if tree.nodes[i].token == token and tree.nodes[i].fate != "pruned")
    return index


def beam_tree_of_text(model, text: str, beam_size: int = 3, **options) -> tuple[BeamTree, Callable[[int], str]]:
    """The tree of a translator's search for one sentence, or of a character model's continuation of a prompt
    (``max_len`` characters, 20 unless given), with the function that shows a token as text."""
    if hasattr(model, "source_batch"):  # a translator
        batch = model.source_batch([text], truncate=True)
        tree = beam_tree(model, batch["src"], batch["src_pad_mask"], beam_size=beam_size, **options)
        return tree, model.tokenizers[1].id_to_token
    if not text:
        raise ValueError("the prompt is empty. Fix: give at least one character, e.g. a newline.")
    prompt = model.vocab.encode(text)[None]  # (1, P): unknown characters are refused, naming them
    tree = beam_tree(model, prompt=prompt, beam_size=beam_size, **{"max_len": 20, **options})
    return tree, lambda token: model.vocab.decode(torch.tensor([token]))
