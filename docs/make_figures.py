"""Every figure of docs/lecture.md, made by the library's own code from the shipped models and real data.

    python docs/make_figures.py [--quick] [--out docs/images/lecture]

Each figure function returns the picture and the facts its caption states (measured from what it drew), so
that tests/test_lecture_figures.py can check the caption against the code. --quick uses fewer sentences for the
padding statistics; the pictures are the same. Needs the Multi30k files ($ZOO_DATA_DIR or the cache).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in a checkout

from benchmarks.padding_efficiency import efficiency, greedy_fill  # noqa: E402 (the benchmark's reference batching)
from datamodules import CharDataModule  # noqa: E402
from datamodules.bucket_sampler import BucketBatchSampler  # noqa: E402
from datamodules.parallel_corpus import load_parallel  # noqa: E402
from zoo import load_pretrained  # noqa: E402
from zoo.demo.beam_tree_figure import beam_tree_figure, shown  # noqa: E402
from zoo.generation.beam_tree import beam_tree_of_text  # noqa: E402

OUT = Path(__file__).resolve().parent / "images" / "lecture"
TRANSLATOR, CHAR_RNN = "transformer-multi30k-en-fr", "char-rnn-shakespeare"
SENTENCE = "Two dogs play in the snow."  # the beam-search example
BUDGET = 4000  # tokens per batch, as the shipped translation configs


@dataclass
class Made:
    figure: plt.Figure
    facts: dict = field(default_factory=dict)  # what the caption says, measured


def char_grid(axes, rows: list[str], title: str, colours: list | None = None) -> None:
    """Characters in a grid, one text row per list item (a batch row), each row its own background colour."""
    axes.set_xlim(-0.5, max(len(r) for r in rows) - 0.5)
    axes.set_ylim(len(rows) - 0.5, -0.5)
    for i, row in enumerate(rows):
        colour = colours[i] if colours else plt.cm.Pastel1(i % 9)
        axes.add_patch(plt.Rectangle((-0.5, i - 0.5), len(row), 1, color=colour, lw=0))
        for j, char in enumerate(row):
            axes.text(j, i, shown(char), ha="center", va="center", fontsize=7, family="monospace")
    axes.set_yticks(range(len(rows)), [f"row {i}" for i in range(len(rows))], fontsize=7)
    axes.set_xticks([])
    axes.set_title(title, fontsize=8)


def stateful_layout(quick: bool) -> Made:
    """Batches t and t+1 of the stateful layout (row i continues row i) against stateless random windows."""
    batches = {}
    for mode in ("stateful", "stateless"):
        data = CharDataModule("shakespeare", mode=mode, seq_len=24, batch_size=4)
        data.setup()
        torch.manual_seed(0)
        loader = iter(data.train_dataloader())
        batches[mode] = [next(loader) for _ in range(2)]
        vocab = data.char_vocab
    figure, axes = plt.subplots(2, 2, figsize=(11, 3.6))
    facts = {}
    for column, mode in enumerate(("stateful", "stateless")):
        (x0, y0), (x1, _) = batches[mode]
        for t, x in enumerate((x0, x1)):
            rows = [vocab.decode(row) for row in x]
            char_grid(
                axes[t, column],
                rows,
                f"{mode}: batch {t} (row i of batch 1 continues row i of batch 0: "
                f"{'yes' if mode == 'stateful' else 'no'})"
                if t == 0
                else f"{mode}: batch {t}",
            )
        # row i of batch t+1 starts with the character that follows row i of batch t in the text
        facts[f"{mode}_rows_continue"] = bool((x1[:, 0] == y0[:, -1]).all())
    facts["stateful_batches"] = [[vocab.decode(r) for r in x] for x, _ in batches["stateful"]]
    figure.tight_layout()
    return Made(figure, facts)


def batch_one_generator(quick: bool) -> Made:
    """The shipped char-RNN, trained with 64 carried streams, copied into a fresh model that generates one."""
    trained = load_pretrained(CHAR_RNN)
    copy = type(trained)(**{k: v for k, v in trained.hparams.items() if not k.startswith("_")})
    copy.load_state_dict(trained.state_dict())
    texts = {
        name: model.eval().generate_text("ROMEO:", 160, strategy="sample", temperature=0.8, seed=7)
        for name, model in (("trained model", trained), ("copy, batch 1", copy))
    }
    other_seed = copy.generate_text("ROMEO:", 160, strategy="sample", temperature=0.8, seed=8)
    figure, axes = plt.subplots(figsize=(11, 3.4))
    axes.axis("off")
    lines = [
        "Training carried a hidden state of 64 rows (one per stream, batches of 64 x 100 characters);",
        "generation carries one. The weights do not depend on the batch size: copy them and generate.",
        "",
    ]
    for name, text in texts.items():
        lines += [f"{name}, seed 7:", *("    " + line for line in ("ROMEO:" + text).splitlines()[:4]), ""]
    axes.text(0, 1, "\n".join(lines), va="top", family="monospace", fontsize=7.5)
    figure.tight_layout()
    return Made(
        figure,
        {
            "same_text": len(set(texts.values())) == 1,
            "other_seed_differs": other_seed != texts["trained model"],
            "texts": texts,
        },
    )


def padding(quick: bool) -> Made:
    """A batch of Multi30k pairs as real and padding tokens: random batching beside token-budget bucketing."""
    model = load_pretrained(TRANSLATOR)
    pairs = load_parallel("multi30k", "en-fr", "train")
    count = 3000 if quick else len(pairs.src)
    src = np.array([len(e.ids) + 1 for e in model.tokenizers[0].encode_batch(pairs.src[:count])])  # + <eos>
    tgt = np.array([len(e.ids) + 1 for e in model.tokenizers[1].encode_batch(pairs.tgt[:count])])
    order = np.random.default_rng(0).permutation(count)
    random_batches = greedy_fill(order, src, tgt, BUDGET)  # shuffle, then fill each to the sampler's budget
    bucketed = list(BucketBatchSampler(src, tgt, max_tokens=BUDGET, seed=0))

    def share(batches) -> float:  # real source tokens / padded source tokens, over the epoch
        return efficiency(batches, src, tgt)["source"]

    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    facts = {}
    for ax, name, batches in ((axes[0], "random", random_batches), (axes[1], "bucketed", bucketed)):
        batch = batches[len(batches) // 2]
        width = src[batch].max()
        grid = np.arange(width)[None, :] < src[batch][:, None]  # (sentences, positions): real token or pad
        ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=1.2, interpolation="nearest")
        facts[f"{name}_share"] = round(float(share(batches)), 4)
        facts[f"{name}_batch_share"] = round(float(grid.mean()), 4)
        ax.set_title(
            f"{name}: {len(batch)} sentences x {width} source positions\nreal tokens: {grid.mean():.0%} of this "
            f"batch, {share(batches):.0%} over the epoch ({count:,} pairs)",
            fontsize=8,
        )
        ax.set_xlabel("source position (white: padding)")
        ax.set_ylabel("sentence")
    figure.tight_layout()
    return Made(figure, facts)


def output_layer_seconds(width: int, vocabulary: int, tokens: int = 4000) -> float:
    """Median time of the output layer's forward and backward for one batch of ``tokens`` target tokens."""
    features = torch.randn(tokens, width, requires_grad=True)
    # Scaled as a trained layer's (logits of order 1): unit-variance weights make logits of order sqrt(width),
    # whose softmax underflows to denormal floats, and the backward then times denormal arithmetic (20x slower).
    weight = (torch.randn(vocabulary, width) * width**-0.5).requires_grad_()
    targets = torch.randint(vocabulary, (tokens,))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        torch.nn.functional.cross_entropy(features @ weight.T, targets).backward()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def output_vocabulary(quick: bool) -> Made:
    """The output layer over 8,000 words: the parameters tying saves in the shipped translator, and the time that
    only a narrower output (fewer features per word) saves."""
    from zoo import Transformer

    model = load_pretrained(TRANSLATOR)
    args = {k: v for k, v in model.hparams.items() if not k.startswith("_") and "tokenizer" not in k}
    untied = Transformer(**{**args, "tie_embeddings": False})
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731 (shared tensors once)
    tied_n, untied_n = count(model), count(untied)
    V, D = model.hparams.tgt_vocab_size, model.hparams.d_model
    tokens = 1000 if quick else 4000  # a batch of the shipped configs: 4,000 target tokens
    seconds = {width: output_layer_seconds(width, V, tokens) for width in (512, 256)}
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 3.2))
    left.barh(["untied", "tied"], [untied_n / 1e6, tied_n / 1e6], color=["0.6", "tab:blue"])
    for y, n in enumerate((untied_n, tied_n)):
        left.text(n / 1e6, y, f" {n / 1e6:.2f}M", va="center", fontsize=8)
    left.set_xlabel("parameters of the shipped Transformer (millions)")
    left.set_xlim(0, untied_n / 1e6 * 1.3)
    left.set_title(
        f"The output layer is a {V:,} x {D} matrix, as large as an embedding. With a joint\nvocabulary one matrix "
        f"serves as source embedding, target embedding and output:\n{(untied_n - tied_n) / 1e6:.2f}M parameters "
        f"saved ({(untied_n - tied_n) / untied_n:.0%}); its matrix product, and its time, stay",
        fontsize=8,
    )
    right.barh([f"{w} features" for w in seconds], [1000 * t for t in seconds.values()], color=["0.6", "tab:blue"])
    for y, t in enumerate(seconds.values()):
        right.text(1000 * t, y, f" {1000 * t:.0f} ms", va="center", fontsize=8)
    right.set_xlabel(f"output layer, forward + backward, {tokens:,} target tokens (ms, this CPU)")
    right.set_xlim(0, 1000 * max(seconds.values()) * 1.3)
    right.set_title(
        f"Time goes with features x vocabulary: the RNN configs make their output 256\nwide instead of 512 "
        f"({seconds[512] / seconds[256]:.1f}x faster here, median of 5)",
        fontsize=8,
    )
    figure.tight_layout()
    facts = {"tied": tied_n, "untied": untied_n, "saved": untied_n - tied_n, "matrix": V * D}
    return Made(figure, {**facts, "seconds_512": seconds[512], "seconds_256": seconds[256]})


def beam_search_tree(quick: bool) -> Made:
    """Beam search with n = 3 on a real sentence: the tree it searched, and the n-best it returned."""
    model = load_pretrained(TRANSLATOR)
    tree, token_text = beam_tree_of_text(model, SENTENCE, beam_size=3)
    figure = beam_tree_figure(tree, token_text, title=f"beam search, n = 3: {SENTENCE}")
    n_best = [model.detokenize(h.tokens) for h in tree.hypotheses]
    return Made(figure, {"tree": tree, "n_best": n_best})


def masked_attention(quick: bool) -> Made:
    """The decoder's first self-attention layer over a real padded batch: causal and padding masks, and weights."""
    model = load_pretrained(TRANSLATOR)
    first = [
        [model.bos_id] + model.tokenizers[1].encode(t).ids for t in load_parallel("multi30k", "en-fr", "val").tgt[:30]
    ]
    ids = [sorted(first, key=len)[i] for i in (29, 15, 0)]  # the longest, a middle one, the shortest
    T = max(map(len, ids))
    pad = model.special_ids.pad
    tgt_in = torch.tensor([row + [pad] * (T - len(row)) for row in ids])  # (3, T)
    pad_mask = tgt_in == pad
    block = model.decoder.layers[0]
    with torch.no_grad():
        h = model.embed(tgt_in, model.tgt_embedding)
        h = block.self_attention_norm(h) if block.norm_first else h
        keys, _ = block.self_attention.keys_values(h)
        weights = block.self_attention.weights(h, keys, pad_mask, causal=True)  # (3, T, T)
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    figure, axes = plt.subplots(1, 5, figsize=(15, 3.4))
    axes[0].imshow(~causal, cmap="Greys", vmin=-0.3, vmax=1)
    axes[0].set_title("causal mask (black: may look)", fontsize=8)
    axes[1].imshow(~pad_mask, cmap="Greys", vmin=-0.3, vmax=1, aspect="auto")
    axes[1].set_yticks(range(3))
    axes[1].set_title("padding mask (row: sentence; grey: padding)", fontsize=8)
    for i in range(3):
        axes[2 + i].imshow(weights[i].masked_fill(pad_mask[i][:, None], float("nan")), cmap="viridis")
        axes[2 + i].set_title(f"weights, sentence {i} ({len(ids[i])} tokens)", fontsize=8)
    for ax in axes:
        ax.set_xlabel("key position", fontsize=7)
    figure.tight_layout()
    real_queries = ~pad_mask[:, :, None]  # the weights of padding queries are never used
    facts = {
        "above_diagonal": float((weights * causal * real_queries).abs().max()),
        "on_padding": float((weights * pad_mask[:, None, :] * real_queries).abs().max()),
        "rows_sum": float((weights.sum(-1) - 1).abs().max()),
    }
    return Made(figure, facts)


def teacher_forcing(quick: bool) -> Made:
    """Training against inference: each step's prediction given the reference prefix (teacher forcing), and
    the model's own greedy output fed back (free running), on a real test sentence, until and after they part."""
    model = load_pretrained(TRANSLATOR)
    test = load_parallel("multi30k", "en-fr", "test")
    runs = [free_and_forced(model, source, reference) for source, reference in zip(test.src[:20], test.tgt[:20])]
    # the example: of the first 20 test sentences, the one whose free-running output follows the reference longest
    # before it parts (one that never parts shows nothing)
    (source, ref, forced, free, parted) = max((r for r in runs if r[4] < len(r[1])), key=lambda r: r[4])
    piece = model.tokenizers[1].id_to_token
    columns = max(len(ref), len(free))
    figure, axes = plt.subplots(figsize=(0.62 * columns + 1.5, 2.4))
    axes.axis("off")
    rows = (("reference", ref), ("teacher-forced", forced), ("free-running", free))
    for y, (name, tokens) in enumerate(rows):
        axes.text(-0.6, y, name, ha="right", va="center", fontsize=8)
        for t, token in enumerate(tokens):
            wrong = name != "reference" and (t >= len(ref) or token != ref[t])
            axes.text(
                t, y, shown(piece(token)), ha="center", va="center", fontsize=7, color="tab:red" if wrong else "black"
            )
    axes.axvline(parted - 0.5, color="tab:orange", lw=1)
    axes.set_xlim(-3, columns)
    axes.set_ylim(2.6, -0.8)
    axes.set_title(
        f"{source}\nred: differs from the reference; orange line: free running parts from it (step {parted})",
        fontsize=8,
    )
    figure.tight_layout()
    return Made(figure, {"forced": forced, "free": free, "reference": ref, "parted": parted})


def free_and_forced(model, source: str, reference: str) -> tuple:
    """(source, reference ids + <eos>, teacher-forced argmax per position, greedy output, first position where
    the greedy output differs from the reference)."""
    batch = model.source_batch([source])
    ref = model.tokenizers[1].encode(reference).ids + [model.eos_id]
    with torch.no_grad():
        state = model.init_state(model.encode(batch["src"], batch["src_pad_mask"]), batch["src_pad_mask"], 1)
        log_probs, _, _ = model.decode(torch.tensor([[model.bos_id] + ref[:-1]]), state)  # the whole prefix at once
    forced = log_probs[0].argmax(-1).tolist()  # (T,) the prediction after each reference prefix
    free = model.generate(batch["src"], batch["src_pad_mask"], strategy="greedy")[0][0].tokens.tolist()
    parted = next((t for t, (a, b) in enumerate(zip(free, ref)) if a != b), min(len(free), len(ref)))
    return source, ref, forced, free, parted


FIGURES = {
    "stateful_layout": stateful_layout,
    "batch_one_generator": batch_one_generator,
    "padding": padding,
    "output_vocabulary": output_vocabulary,
    "beam_search_tree": beam_search_tree,
    "masked_attention": masked_attention,
    "teacher_forcing": teacher_forcing,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where the PNGs go (default {OUT})")
    parser.add_argument("--quick", action="store_true", help="padding statistics on 3,000 pairs")
    parser.add_argument("--only", nargs="*", choices=sorted(FIGURES), help="make only these")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    print(f"{'figure':<22}{'seconds':>8}  facts")
    for name, make in FIGURES.items():
        if args.only and name not in args.only:
            continue
        start = time.perf_counter()
        made = make(args.quick)
        made.figure.savefig(args.out / f"{name}.png", dpi=110)
        plt.close("all")
        simple = {k: v for k, v in made.facts.items() if isinstance(v, (bool, int, float))}
        summary[name] = simple
        print(f"{name:<22}{time.perf_counter() - start:>8.1f}  {simple}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
