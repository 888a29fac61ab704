"""The decoding mixin: exact beam search on a scripted model, and its promises on real ones."""

import itertools
import math

import pytest
import torch
from torch import nn

from zoo import CharRNN
from zoo.generation.decoding import DecodingMixin
from zoo.generation.nested import Static
from zoo.generation.options import length_penalty

EOS, A, B, BOS = 0, 1, 2, 3


class ScriptedLM(DecodingMixin, nn.Module):
    """Next-token probabilities fixed by (step, previous token), as in fairseq's beam tests."""

    eos_id = EOS

    def table(self, step: int, previous: int) -> list[float]:
        if step == 0:
            return [0.1, 0.5, 0.4, 0.0]
        if step == 1:
            return [0.2, 0.45, 0.35, 0.0] if previous == A else [0.9, 0.05, 0.05, 0.0]
        if step == 2:
            return [0.98, 0.01, 0.01, 0.0]
        return [1.0, 0.0, 0.0, 0.0]

    def init_state(self, memory, src_pad_mask, batch_size):
        return {"step": torch.zeros(batch_size, dtype=torch.long)}

    def decode(self, tokens, state, attention=False):
        log_probs = []
        for t in range(tokens.shape[1]):
            probs = torch.tensor([self.table(int(s), int(p)) for s, p in zip(state["step"], tokens[:, t])])
            log_probs.append(probs.log())
            state = {"step": state["step"] + 1}
        return torch.stack(log_probs, 1), state, None


def run(model, **options):
    prompt = torch.full((1, 1), BOS)
    return model.generate(prompt=prompt, max_len=10, **options)[0]


def test_greedy_takes_the_locally_best_token():
    (best,) = run(ScriptedLM(), strategy="greedy")
    assert best.tokens.tolist() == [A, A, EOS]
    assert best.log_prob == pytest.approx(math.log(0.5 * 0.45 * 0.98))


def test_beam_finds_the_better_sequence_greedy_misses_and_stops_early():
    (best,) = run(ScriptedLM(), strategy="beam", beam_size=2, length_penalty=0.0)
    assert best.tokens.tolist() == [B, EOS]
    assert best.score == pytest.approx(math.log(0.4 * 0.9))


def test_n_best_lists_in_score_order():
    hypotheses = run(ScriptedLM(), strategy="beam", beam_size=2, n_best=2, length_penalty=0.0)
    assert [h.tokens.tolist() for h in hypotheses] == [[B, EOS], [A, A, EOS]]
    assert [h.score for h in hypotheses] == pytest.approx([math.log(0.36), math.log(0.5 * 0.45 * 0.98)])


def test_a_strong_length_penalty_lets_the_longer_hypothesis_win():
    (best,) = run(ScriptedLM(), strategy="beam", beam_size=2, length_penalty=3.0)
    assert best.tokens.tolist() == [A, A, EOS]
    log_prob = math.log(0.5 * 0.45 * 0.98)
    assert best.log_prob == pytest.approx(log_prob)
    assert best.score == pytest.approx(log_prob / ((5 + 3) / 6) ** 3)


def test_min_len_forbids_an_early_eos():
    (best,) = run(ScriptedLM(), strategy="beam", beam_size=2, length_penalty=0.0, min_len=2)
    assert best.tokens.tolist() == [A, A, EOS]


def test_max_len_ends_hypotheses_unfinished():
    hypotheses = ScriptedLM().generate(
        prompt=torch.full((1, 1), BOS), strategy="beam", beam_size=2, n_best=2, max_len=1, length_penalty=0.0
    )[0]
    assert [h.tokens.tolist() for h in hypotheses] == [[A], [B]]


# --- real models ------------------------------------------------------------------------


def tiny_lm(vocab="\nabc", seed=0):
    torch.manual_seed(seed)
    model = CharRNN(len(vocab), vocab, hidden_size=16, num_layers=1).eval()
    model.eos_id = 0  # "\n" ends a hypothesis
    return model


@torch.no_grad()
def teacher_forced_log_prob(model, prompt, tokens):
    logits, _ = model(torch.cat([prompt, tokens])[None])  # (1, P+L, V)
    log_probs = logits[0, len(prompt) - 1 : -1].log_softmax(-1)  # the distributions that chose the tokens
    return float(log_probs.gather(1, tokens[:, None]).sum())


def test_beam_of_one_equals_greedy():
    model = tiny_lm()
    prompt = torch.tensor([[1, 2], [3, 3], [2, 1]])
    greedy = model.generate(prompt=prompt, max_len=12, strategy="greedy", length_penalty=0.0)
    beam = model.generate(prompt=prompt, max_len=12, strategy="beam", beam_size=1, length_penalty=0.0)
    for g, b in zip(greedy, beam):
        assert g[0].tokens.tolist() == b[0].tokens.tolist()
        assert g[0].score == pytest.approx(b[0].score, abs=1e-5)


def test_wide_beam_equals_exhaustive_search():
    model = tiny_lm(seed=3)
    prompt, max_len, alpha = torch.tensor([1]), 4, 0.6
    candidates = [list(seq) + [EOS] for n in range(max_len) for seq in itertools.product([1, 2, 3], repeat=n)]
    candidates += [list(seq) for seq in itertools.product([1, 2, 3], repeat=max_len)]  # unfinished at max_len
    scored = sorted(
        (
            (teacher_forced_log_prob(model, prompt, torch.tensor(c)) / length_penalty(len(c), alpha), c)
            for c in candidates
        ),
        reverse=True,
    )
    hypotheses = model.generate(
        prompt=prompt[None], max_len=max_len, strategy="beam", beam_size=32, n_best=5, length_penalty=alpha
    )[0]
    assert [h.tokens.tolist() for h in hypotheses] == [c for _, c in scored[:5]]
    assert [h.score for h in hypotheses] == pytest.approx([s for s, _ in scored[:5]], abs=1e-5)


def test_scores_equal_a_teacher_forced_recomputation():
    model = tiny_lm(seed=1)
    prompt = torch.tensor([2, 1, 3])
    for strategy in ("beam", "greedy", "sample"):
        n_best = 3 if strategy == "beam" else 1
        sampling = {"seed": 0, "temperature": 1.5} if strategy == "sample" else {}
        hypotheses = model.generate(
            prompt=prompt[None],
            max_len=15,
            strategy=strategy,
            n_best=n_best,
            beam_size=4,
            length_penalty=0.8,
            **sampling,
        )[0]
        for h in hypotheses:
            expected = teacher_forced_log_prob(model, prompt, h.tokens)
            assert h.log_prob == pytest.approx(expected, abs=1e-4)
            assert h.score == pytest.approx(expected / length_penalty(len(h.tokens), 0.8), abs=1e-4)


def test_generated_tokens_can_be_trained_on():
    """generate decodes in inference mode; what it returns must still serve as training data (back-translation:
    an inference tensor cannot be saved for backward)."""
    model = tiny_lm(seed=1)
    embedding = nn.Embedding(8, 4)
    for strategy in ("beam", "greedy"):
        (best, *_), *_ = model.generate(prompt=torch.tensor([[2, 1, 3]]), max_len=6, strategy=strategy)
        embedding(best.tokens).sum().backward()  # raised "Inference tensors cannot be saved for backward"
        assert embedding.weight.grad is not None


def test_batched_beam_search_equals_each_input_alone():
    model = tiny_lm(seed=2)
    prompts = torch.tensor([[1, 2, 3], [3, 3, 3], [2, 1, 1], [1, 1, 1]])
    options = dict(max_len=10, strategy="beam", beam_size=4, n_best=3, length_penalty=1.0)
    batched = model.generate(prompt=prompts, **options)
    for row, hypotheses in enumerate(batched):
        alone = model.generate(prompt=prompts[row : row + 1], **options)[0]
        assert [h.tokens.tolist() for h in hypotheses] == [h.tokens.tolist() for h in alone]
        assert [h.score for h in hypotheses] == pytest.approx([h.score for h in alone], abs=1e-5)


class ToyAttentionSeq2Seq(DecodingMixin, nn.Module):
    """A minimal encoder-decoder with dot-product attention; encoder outputs travel as Static."""

    bos_id, eos_id = 1, 2

    def __init__(self, vocab_size=9, hidden=12):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, hidden)
        self.cell = nn.GRUCell(hidden, hidden)
        self.out = nn.Linear(2 * hidden, vocab_size)

    def encode(self, src, src_pad_mask):
        return self.embed(src)  # (B, S, H)

    def init_state(self, memory, src_pad_mask, batch_size):
        real = (~src_pad_mask).unsqueeze(-1).float()
        start = (memory * real).sum(1) / real.sum(1)  # mean over real tokens
        return {"h": start, "memory": Static((memory, src_pad_mask))}

    def decode(self, tokens, state, attention=False):
        memory, pad = state["memory"].value
        h, log_probs, weights = state["h"], [], []
        for t in range(tokens.shape[1]):
            h = self.cell(self.embed(tokens[:, t]), h)
            scores = torch.einsum("bsh,bh->bs", memory, h).masked_fill(pad, float("-inf"))
            weights.append(scores.softmax(-1))  # (R, S)
            context = torch.einsum("bs,bsh->bh", weights[-1], memory)
            log_probs.append(self.out(torch.cat([h, context], -1)).log_softmax(-1))
        state = {"h": h, "memory": state["memory"]}
        return torch.stack(log_probs, 1), state, torch.stack(weights, 1) if attention else None


def test_padding_and_batch_company_do_not_change_beam_results_and_attention():
    torch.manual_seed(0)
    model = ToyAttentionSeq2Seq().eval()
    sources = [[3, 4, 5], [6, 7, 8, 3, 4, 5, 6, 7, 8, 3], [5], [4, 4, 8, 7]]
    width = max(map(len, sources))
    src = torch.tensor([s + [0] * (width - len(s)) for s in sources])
    pad = src == 0
    options = dict(strategy="beam", beam_size=3, n_best=2, max_len_a=1.5, max_len_b=2, return_attention=True)
    batched = model.generate(src, pad, **options)
    for source, hypotheses in zip(sources, batched):
        alone = model.generate(torch.tensor([source]), torch.zeros(1, len(source), dtype=torch.bool), **options)[0]
        assert [h.tokens.tolist() for h in hypotheses] == [h.tokens.tolist() for h in alone]
        assert [h.score for h in hypotheses] == pytest.approx([h.score for h in alone], abs=1e-5)
        for h, a in zip(hypotheses, alone):
            assert h.attention.shape == (len(h.tokens), width)
            assert len(h.tokens) <= int(1.5 * len(source) + 2)
            torch.testing.assert_close(h.attention[:, : len(source)], a.attention, atol=1e-5, rtol=0)
            assert float(h.attention[:, len(source) :].abs().sum()) == 0  # pads get no weight


# --- sampling ---------------------------------------------------------------------------


def first_tokens(**options):
    prompt = torch.full((400, 1), BOS)
    hypotheses = ScriptedLM().generate(prompt=prompt, max_len=1, strategy="sample", **options)
    return {int(h[0].tokens[0]) for h in hypotheses}


def test_top_k_keeps_every_token_tied_with_the_kth_in_every_row():
    from zoo.generation.options import DecodingOptions
    from zoo.generation.sequential_decoding import choose

    # Row 0: the 2nd and 3rd tokens tie at the k-th (k = 2) place; row 1: the same values, another order.
    probs = torch.tensor([[0.4, 0.25, 0.25, 0.1], [0.25, 0.1, 0.4, 0.25]])
    log_probs = probs.log().repeat(500, 1)
    tokens = choose(log_probs, DecodingOptions(strategy="sample", top_k=2), torch.Generator().manual_seed(0))
    assert set(tokens[0::2].tolist()) == {0, 1, 2} and set(tokens[1::2].tolist()) == {0, 2, 3}  # never the 0.1


def test_sampling_stays_inside_top_k_and_top_p_and_repeats_with_a_seed():
    assert first_tokens(seed=0) == {EOS, A, B}  # the full support: probabilities .1 .5 .4
    assert first_tokens(seed=0, top_k=2) == {A, B}
    assert first_tokens(seed=0, top_k=1) == {A}
    assert first_tokens(seed=0, top_p=0.6) == {A, B}  # .5 alone is short of .6
    assert first_tokens(seed=0, top_p=0.45) == {A}  # .5 alone reaches .45
    model = tiny_lm()
    prompt = torch.tensor([[1, 2]] * 3)
    one = model.generate(prompt=prompt, max_len=20, strategy="sample", seed=7, temperature=1.3, top_p=0.9)
    two = model.generate(prompt=prompt, max_len=20, strategy="sample", seed=7, temperature=1.3, top_p=0.9)
    assert [h[0].tokens.tolist() for h in one] == [h[0].tokens.tolist() for h in two]


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(strategy="beam", beam_size=0), "beam_size must be >= 1"),
        (dict(strategy="beam", beam_size=2, n_best=3), "n_best must lie in 1..beam_size"),
        (dict(max_len=3, min_len=5), "min_len <= max_len"),
        (dict(strategy="sample", top_p=0.0), r"top_p must be a number in \(0, 1\]"),
        (dict(strategy="sample", top_p=1.5), r"top_p must be a number in \(0, 1\]"),
        (dict(strategy="sample", top_p=float("nan")), r"top_p must be a number in \(0, 1\], got nan"),
        (dict(strategy="sample", temperature=float("nan")), "temperature must be a finite number"),
        (dict(strategy="beam", length_penalty=float("nan")), "length_penalty must be a finite number"),
        (dict(strategy="beam", length_penalty=float("-inf")), "length_penalty must be a finite number"),
        (dict(max_len_a=float("inf")), r"max_len_a must be a finite number in \[0, inf\)"),
        (dict(strategy="sample", temperature=0.0), "temperature must be > 0"),
        (dict(strategy="nucleus"), "strategy must be"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options, message):
    with pytest.raises(ValueError, match=message):
        tiny_lm().generate(prompt=torch.tensor([[1]]), **options)


def test_a_language_model_needs_a_prompt():
    with pytest.raises(ValueError, match="needs a prompt"):
        tiny_lm().generate(max_len=5)
    with pytest.raises(ValueError, match="needs a prompt"):
        tiny_lm().generate(prompt=torch.zeros(1, 0, dtype=torch.long), max_len=5)
