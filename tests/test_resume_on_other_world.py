"""A checkpoint written mid-epoch by a run on N processes resumes on another number of them and finishes the
epoch: across the interruption no training example is seen twice and none is skipped (but for the fewer than
one batch per process that an epoch dealt to the new number leaves over, as every epoch does).

Real `zoo fit` runs (DDP over gloo on this CPU), recording every rank's batches (tests/batch_recorder.py).
The stateful char-RNN, whose carried hidden states belong to the old run's text streams, is refused there, and
resumes exactly on as many processes (every rank's carried state is in the checkpoint).
"""

from collections import Counter

import pytest
import torch

from datamodules.char_batches import Windows, WindowSampler
from datamodules.char_datamodule import CharDataModule
from tests.conftest import run_zoo
from tests.test_distributed import char_rnn_config, processes, records, unique_toy_corpus, write_config, zoo
from zoo.hub.checkpoints import read_checkpoint

STOP = 3  # steps before the interruption

TRANSFORMER = {
    "class_path": "zoo.Transformer",
    "init_args": {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "ffn_dim": 32},
}


def interrupted_run(folder, config: str, world: int) -> str:
    """Fit on ``world`` processes, stopped after STOP steps mid-epoch; the checkpoint written there."""
    zoo("fit", "--config", config, *processes(world), "--trainer.max_steps", str(STOP), cwd=folder)
    (checkpoint,) = (folder / "ckpt").glob(f"*step={STOP}.ckpt")
    return str(checkpoint)


def rows_of(folder) -> list[tuple]:
    return [tuple(row) for rank in records(folder) for batch in rank["batches"] for row in batch["rows"]]


def lockstep(folder) -> int:
    """The number of batches every rank trained (they must agree)."""
    counts = {len(rank["batches"]) for rank in records(folder)}
    assert len(counts) == 1, counts
    return counts.pop()


def translation_run(folder, record: str) -> str:
    data = {
        "class_path": "datamodules.TranslationDataModule",
        "init_args": {"source": str(folder.parent / "toy"), "pair": "en-xx", "vocab_size": 80, "max_tokens": 240},
    }
    return write_config(
        folder / f"{record}.yaml", folder / record, TRANSFORMER, data, checkpoint={"every_n_train_steps": STOP}
    )


@pytest.fixture(scope="module")
def toy_corpus(tmp_path_factory):
    return unique_toy_corpus(tmp_path_factory.mktemp("data") / "toy")


@pytest.mark.slow  # ~15 s a run; the dealing rule itself is tested in tests/test_bucket_sampler.py
@pytest.mark.parametrize(
    ("before", "after"),
    [(1, 2), (2, 1), (2, 4)],
)
def test_bucketed_translation_resumes_on_another_number_of_processes(tmp_path, toy_corpus, before, after):
    (tmp_path / "toy").symlink_to(toy_corpus)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    checkpoint = interrupted_run(first, translation_run(first, "fit"), before)
    assert lockstep(first / "fit") == STOP

    zoo("fit", "--config", translation_run(second, "fit"), *processes(after), "--ckpt_path", checkpoint, cwd=second)
    resumed = lockstep(second / "fit")
    seen = rows_of(first / "fit") + rows_of(second / "fit")
    assert len(seen) == len(set(seen))  # no pair twice
    largest = max(len(b["rows"]) for rank in records(second / "fit") for b in rank["batches"])
    assert 300 - (after - 1) * largest <= len(seen) <= 300  # none skipped but what an epoch on `after` trims
    if after == 1:
        assert len(seen) == 300

    # The step counter (so the learning-rate schedule) went on from the interruption, one step per batch, and
    # the epoch ended as this run counts it: validated.
    assert records(second / "fit")[0]["global_step"] == STOP + resumed
    assert records(second / "fit")[0]["val"]


def char_run(folder, corpus, mode: str) -> str:
    every = {"every_n_train_steps": STOP}
    return char_rnn_config(
        folder, "fit", corpus, mode, seq_len=16, batch_size=16 if mode == "stateless" else 4, checkpoint=every
    )


@pytest.mark.slow  # two DDP runs and one more: ~40 s
@pytest.mark.parametrize("after", [1, 3])
def test_char_windows_resume_on_another_number_of_processes(tmp_path, small_corpus, after):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    checkpoint = interrupted_run(first, char_run(first, small_corpus, "stateless"), 2)
    zoo(
        "fit",
        "--config",
        char_run(second, small_corpus, "stateless"),
        *processes(after),
        "--ckpt_path",
        checkpoint,
        cwd=second,
    )
    lockstep(second / "fit")

    # The epoch's windows, as one process deals them from the same shuffle and offsets.
    seed = read_checkpoint(checkpoint)["CharDataModule"]["window_seed"]
    dm = CharDataModule(str(small_corpus), mode="stateless", seq_len=16, batch_size=16, val_fraction=0.5)
    dm.setup("fit")
    windows = Windows(dm.train_tokens, 16)
    epoch = Counter(tuple(windows[item][0].tolist()) for item in WindowSampler(windows, seed, shuffle=True))
    seen = Counter(rows_of(first / "fit") + rows_of(second / "fit"))
    assert not seen - epoch  # nothing twice, nothing from outside the epoch
    assert 0 <= epoch.total() - seen.total() < after  # what an epoch dealt to `after` ranks leaves over


@pytest.mark.slow  # a DDP run: ~20 s
def test_a_stateful_char_rnn_is_refused_on_another_number_of_processes(tmp_path, small_corpus):
    config = char_run(tmp_path, small_corpus, "stateful")
    checkpoint = interrupted_run(tmp_path, config, 2)
    done = run_zoo("fit", "--config", config, *processes(1), "--ckpt_path", checkpoint, cwd=tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "stateful run on 2 process(es)" in last and "resume on 2 process(es)" in last and "--pretrained" in last
    assert "Traceback" not in done.stderr


@pytest.mark.slow  # three DDP runs: ~35 s
def test_a_stateful_char_rnn_resumes_exactly_on_as_many_processes(tmp_path, small_corpus):
    """Each process carries its own streams' hidden state: the checkpoint keeps every rank's, and each rank takes
    its own back, so the resumed run ends with the weights of an uninterrupted one."""
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    straight.mkdir(), interrupted.mkdir()
    zoo("fit", "--config", char_run(straight, small_corpus, "stateful"), *processes(2), cwd=straight)
    config = char_run(interrupted, small_corpus, "stateful")
    checkpoint = interrupted_run(interrupted, config, 2)
    assert read_checkpoint(checkpoint)["carried_hidden_state_ranks"] == 2
    zoo("fit", "--config", config, *processes(2), "--ckpt_path", checkpoint, cwd=interrupted)

    steps = sorted(int(p.stem.split("step=")[1]) for p in (straight / "ckpt").glob("*step=*.ckpt"))
    assert steps[-1] > 5 * STOP  # the comparison is well after the resume
    ours = read_checkpoint(interrupted / "ckpt" / f"epoch=0-step={steps[-1]}.ckpt")["state_dict"]
    theirs = read_checkpoint(straight / "ckpt" / f"epoch=0-step={steps[-1]}.ckpt")["state_dict"]
    for name in theirs:
        assert torch.equal(ours[name], theirs[name]), f"{name} differs after resuming"
