import io
import os
import random
import subprocess
import sys
from pathlib import Path

import lightning
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shipped_trainer_configs() -> list[tuple[Path, dict]]:
    """Every config under configs/ with its ``trainer`` section (empty when it has none), parsed."""
    import yaml

    configs = sorted((REPO / "configs").rglob("*.yaml"))
    return [(config, yaml.safe_load(config.read_text()).get("trainer", {})) for config in configs]


# Every test that trains draws its seeds from SEED, so the whole suite can run under other seeds:
# `make test-seeds` runs the training tests with ZOO_TEST_SEED=1, 2, 3 and once on one thread. A test
# that passes only for one trajectory (one seed, one CPU's rounding) is a test of the machine, not the code.
SEED = int(os.environ.get("ZOO_TEST_SEED", "0"))
# The suite takes the same paths on every CPU: fp32 training and decoding by default, as on a CPU without native
# bf16 (zoo/modules/compute_types.py); the tests of bf16 ask for it by name, or set this to 1 themselves.
os.environ["ZOO_NATIVE_BF16"] = "0"  # (and every `zoo` subprocess)
# `make test` runs the suite in pytest-xdist workers, one per core: each worker then computes on one thread (two
# workers of two threads each on two cores would fight over them), as `make test-seeds` checks the suite can.
THREADS = os.environ.get("ZOO_TEST_THREADS") or ("1" if os.environ.get("PYTEST_XDIST_WORKER") else None)
if THREADS:
    torch.set_num_threads(int(THREADS))
    os.environ["OMP_NUM_THREADS"] = THREADS  # and every `zoo` subprocess


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Every test gets its own empty download cache and logs W&B offline, never to the network."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture
def shared_data() -> Path:
    """The real corpora ($ZOO_DATA_DIR, which CI points at ../shared/data)."""
    value = os.environ.get("ZOO_DATA_DIR")
    if not value or not Path(value, "tinyshakespeare", "input.txt").is_file():
        pytest.skip("needs the real corpora: set ZOO_DATA_DIR to a folder holding tinyshakespeare/input.txt")
    return Path(value)


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    """A few KB of real-looking text, for runs that need no particular corpus."""
    from datamodules.shakespeare_plays import shakespeare_text

    path = tmp_path / "corpus.txt"
    path.write_text(shakespeare_text()[:40_000], encoding="utf-8")
    return path


WORDS = "a man woman dog runs jumps over the red ball in park with small child".split()


def toy_pairs(n, seed=0):
    rng = random.Random(seed)
    src = [" ".join(rng.choices(WORDS, k=rng.randint(2, 12))) for _ in range(n)]
    return src, [" ".join(reversed(s.split())) + " ." for s in src]


@pytest.fixture
def toy_folder(tmp_path):
    """A tiny parallel corpus, en -> xx (the words reversed, plus a full stop), as local files."""
    folder = tmp_path / "toy"
    folder.mkdir()
    for split, n in (("train", 400), ("val", 40), ("test", 40)):
        src, tgt = toy_pairs(n, seed=len(split))
        (folder / f"{split}.en").write_text("\n".join(src) + "\n")
        (folder / f"{split}.xx").write_text("\n".join(tgt) + "\n")
    return folder


def run_zoo(
    *args: str, cwd: Path | None = None, stdin: str | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:
    """`zoo ARGS` as a user runs it: a fresh process, W&B offline, this checkout's code."""
    return subprocess.run(
        _zoo_command(args), cwd=cwd, env=_zoo_env(), input=stdin, capture_output=True, text=True, timeout=timeout
    )


def start_zoo(*args: str, cwd: Path | None = None) -> subprocess.Popen:
    """`zoo ARGS` started in the background (to be killed, say), its output discarded."""
    return subprocess.Popen(
        _zoo_command(args), cwd=cwd, env=_zoo_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _zoo_command(args) -> list[str]:
    return [sys.executable, "-m", "zoo", *args]


def _zoo_env() -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}


def readline_within(stream, seconds: float, what: str) -> str:
    """The next line of a subprocess' output, or a failure naming ``what`` was awaited once ``seconds`` pass."""
    import threading

    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    if reader.is_alive():
        pytest.fail(f"no line after {seconds:.0f} s while waiting for {what}")
    return line[0]


def zoo_here(*args: str, stdin: str | None = None) -> tuple[int, str]:
    """`zoo ARGS` in this process (no start-up cost): (exit status, the error message it exited with, or "");
    what it printed is left to capsys."""
    from zoo.cli import main

    argv, sys.argv = sys.argv, ["zoo"]  # pytest's own arguments are not the command's
    environ = dict(os.environ)  # Lightning and W&B leave variables behind that later `zoo` processes would inherit
    real_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode("utf-8")), encoding="utf-8")
    try:
        main(list(args))
    except SystemExit as done:
        return (1, done.code) if isinstance(done.code, str) else (done.code or 0, "")
    finally:
        sys.argv, sys.stdin = argv, real_stdin
        os.environ.clear()
        os.environ.update(environ)
    return 0, ""


def only(paths):
    paths = list(paths)
    assert len(paths) == 1, paths
    return paths[0]


def save_checkpoint(model, path, global_step: int = 99):
    """What `zoo fit` writes, as far as loading is concerned: weights and hparams naming the class."""
    from zoo.models.registry import public_class_path

    hparams = {**model.hparams, "_class_path": public_class_path(type(model))}
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": hparams,
        "epoch": 3,
        "global_step": global_step,
        "pytorch-lightning_version": lightning.__version__,
    }
    torch.save(checkpoint, path)
    return path


def toy_data_args(folder: Path, vocab_size: int, max_tokens: int | None = None) -> list[str]:
    """The `zoo fit` options that train a translation config on the toy corpus instead of Multi30k."""
    args = ["--data.init_args.source", str(folder), "--data.init_args.pair", "en-xx"]
    args += ["--data.init_args.vocab_size", str(vocab_size)]
    return args + (["--data.init_args.max_tokens", str(max_tokens)] if max_tokens is not None else [])


@pytest.fixture
def translator(toy_folder):
    """A tiny untrained Transformer with the toy corpus's tokenizers (so it translates text)."""
    from datamodules import TranslationDataModule
    from zoo import Transformer

    data = TranslationDataModule(str(toy_folder), pair="en-xx", vocab_size=60, max_tokens=500)
    torch.manual_seed(0)
    model = Transformer(
        data.src_vocab_size,
        data.tgt_vocab_size,
        src_tokenizer=data.src_tokenizer_json,
        tgt_tokenizer=data.tgt_tokenizer_json,
        d_model=16,
        heads=2,
        encoder_layers=1,
        decoder_layers=1,
        ffn_dim=32,
    )
    return model.eval()


@pytest.fixture
def translator_checkpoint(translator, tmp_path) -> Path:
    return save_checkpoint(translator, tmp_path / "translator.ckpt")


def shipped_config_data(config: Path, toy_folder: Path, small_corpus: Path, parent: Path, tmp_path: Path):
    """(model class, the options that make a shipped config train on tiny local data): a translation config reads
    the toy corpus; a char config the small corpus; a fine-tuning config (no model class) starts from ``parent``,
    a tiny Transformer checkpoint, whose tokenizers read the toy corpus; a mixed one mixes in a copy of it."""
    import shutil

    import yaml

    settings = yaml.safe_load(config.read_text())
    model_class = settings["model"].get("class_path")
    data = settings["data"]["init_args"]
    if data.get("pair") is None:
        return model_class, ["--data.init_args.source", str(small_corpus)] + [
            "--data.init_args.seq_len",
            "16",
            "--data.init_args.batch_size",
            "4",
        ]
    args = ["--data.init_args.source", str(toy_folder), "--data.init_args.pair", "en-xx"]
    if model_class is None:
        model_class, args = "zoo.Transformer", [*args, "--pretrained", str(parent)]
    else:
        args += ["--data.init_args.vocab_size", "60"]
    if not data.get("batch_size"):  # a token budget the toy batches fit
        args += ["--data.init_args.max_tokens", "300"]
    if data.get("mix_source"):
        mixed = tmp_path / "original"
        if not mixed.exists():
            shutil.copytree(toy_folder, mixed)
        args += ["--data.init_args.mix_source", str(mixed)]
    return model_class, args
