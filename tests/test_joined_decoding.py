"""Rows join a batch while it decodes (nested.join_rows) and leave it, and no row's results change: what a server
needs to batch requests that arrive at different times. For every kind of decoding state: a Transformer's KV
caches (left-padded, positions per row) and cross-attention memory, an RNN seq2seq's memory, a Transformer LM's
caches with prompts of different lengths, a char-RNN's fixed-size state."""

import pytest
import torch
from lightning_utilities.core.apply_func import apply_to_collection

import zoo
from zoo.generation.nested import gather_rows, join_rows
from zoo.modules.kv_cache import KVCache

LONG, SHORT = "A man in a blue shirt is riding a bike down a busy street.", "Two dogs."


def prepared(model, text: str):
    """One input alone as the engine (zoo/serving/engine.py) takes it in: its state before its prompt's last token
    (a translator's <bos>; a language model's prompt read up to there), and that token (1,)."""
    if hasattr(model, "source_batch"):
        batch = model.source_batch([text])
        state = model.init_state(model.encode(batch["src"], batch["src_pad_mask"]), batch["src_pad_mask"], 1)
        prompt = torch.tensor([[model.bos_id]])
    else:
        state, prompt = model.init_state(None, None, 1), model.vocab.encode(text)[None]
    if prompt.shape[1] > 1:
        _, state, _ = model.next_log_probs(prompt[:, :-1], state)
    return state, prompt[:, -1]


def start(model, text: str):
    """One input alone: its first log-probabilities (1, V) and state, after the prompt (<bos> for translators)."""
    state, last = prepared(model, text)
    log_probs, state, _ = model.next_log_probs(last[:, None], state)
    return log_probs, state


def greedy(model, log_probs, state, steps: int):
    """Greedy steps of the rows in ``state``: per step the log-probabilities (R, V) that chose the tokens."""
    seen = []
    for _ in range(steps):
        seen.append(log_probs)
        log_probs, state, _ = model.next_log_probs(log_probs.argmax(-1)[:, None], state)
    return seen, log_probs, state


@pytest.fixture(scope="module")
def tiny_lm():
    torch.manual_seed(0)
    chars = "".join(sorted(set(LONG + SHORT + "ROMEO:")))
    return zoo.TransformerLM(vocab=chars, vocab_size=len(chars), d_model=32, heads=4, layers=2, ffn_dim=64).eval()


@pytest.mark.parametrize("kind", ["transformer", "seq2seq", "transformer_lm", "char_rnn"])
@torch.no_grad()
def test_a_row_that_joins_a_running_batch_and_one_that_leaves_decode_as_they_would_alone(kind, tiny_lm):
    model = {
        "transformer": lambda: zoo.load_pretrained("transformer-multi30k-en-fr"),
        "seq2seq": lambda: zoo.load_pretrained("seq2seq-luong-multi30k-en-fr"),
        "transformer_lm": lambda: tiny_lm,
        "char_rnn": lambda: zoo.load_pretrained("char-rnn-shakespeare"),
    }[kind]()
    first = LONG if hasattr(model, "source_batch") else "ROMEO: A man"  # LM prompts of different lengths
    second = SHORT if hasattr(model, "source_batch") else "RO"
    alone_first, _, _ = greedy(model, *start(model, first), 9)
    alone_second, _, _ = greedy(model, *start(model, second), 6)

    # the first input decodes 3 steps alone; the second joins before its first input (no position cached yet,
    # as the engine joins it), and that input is decoded in the first row's step; 6 steps together; the first leaves
    seen, log_probs, state = greedy(model, *start(model, first), 3)
    joining_state, joining_input = prepared(model, second)
    inputs = torch.cat([log_probs.argmax(-1), joining_input])
    log_probs, state, _ = model.next_log_probs(inputs[:, None], join_rows(state, joining_state))
    together, log_probs, state = greedy(model, log_probs, state, 5)
    for step, rows in enumerate(together):
        torch.testing.assert_close(rows[0], alone_first[4 + step][0], atol=2e-5, rtol=0)
        torch.testing.assert_close(rows[1], alone_second[step][0], atol=2e-5, rtol=0)
    state = apply_to_collection(gather_rows(state, torch.tensor([1])), KVCache, KVCache.trimmed)
    if kind in ("transformer", "transformer_lm"):  # the first row's extra positions left with it
        cache = state.caches[0]
        assert cache.pad is None and cache.length == (1 if kind == "transformer" else len(second)) + 5
    last, _, _ = greedy(model, log_probs[1:], state, 1)
    torch.testing.assert_close(last[0][0], alone_second[5][0], atol=2e-5, rtol=0)


def test_the_engine_decodes_jobs_submitted_together_in_one_batch_and_each_as_alone():
    from zoo.serving.engine import DecodeEngine, Job

    model = zoo.load_pretrained("transformer-multi30k-en-fr")
    sentences = [LONG, SHORT, "A woman holds a red umbrella in the rain.", "People are shopping."] * 2
    options = [{"strategy": "sample", "seed": 4} if i % 2 else {} for i in range(len(sentences))]
    engine = DecodeEngine(model)
    jobs = [  # submitted within microseconds: the ones the first step does not find join at the next
        engine.submit(Job([model.bos_id], o, src=model.encode_sources([s])[0].ids + [model.eos_id]))
        for s, o in zip(sentences, options)
    ]
    for job in jobs:
        assert job.finished.wait(60) and job.error is None
    assert engine.load.most_rows == len(sentences)  # all eight decoded together
    for job, sentence, o in zip(jobs, sentences, options):
        assert model.detokenize(torch.tensor(job.tokens)) == model.translate([sentence], **o)[0]
