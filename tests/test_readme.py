"""Every runnable code block of README.md, run as a reader would run it.

Python blocks run as scripts and every `zoo` line of the bash blocks as the shell would run
it (both in this process, which saves the start-up of each), in a folder holding the files
the README names: ``char_rnn.ckpt`` and ``translator.ckpt`` (tiny models) and
``sentences.en``. `zoo fit|validate|test` lines are checked with --print_config (their
config, class paths and overrides must parse; training at the README's sizes takes minutes,
and the CLI tests train); the other commands run for real. YAML blocks are checked against
Lightning's Trainer arguments. `make test` is what CI runs; `make demo` trains for three
minutes and is left to a manual check.
"""

from __future__ import annotations

import inspect
import re
import shlex
import string
import sys
from pathlib import Path

import lightning
import pytest
import torch
import yaml

from tests.conftest import save_checkpoint
from zoo import CharRNN
from zoo.cli import main

REPO = Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"^```(\w+)\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.S | re.M)
PYTHON = [code for language, code in BLOCKS if language == "python"]
ZOO_LINES = [
    line for language, code in BLOCKS if language == "bash" for line in code.splitlines() if line.startswith("zoo ")
]
TRAINING = ("zoo fit ", "zoo validate ", "zoo test ")


@pytest.fixture
def reader_folder(tmp_path, translator) -> Path:
    """A working folder with the files the README's examples name."""
    torch.manual_seed(0)
    chars = "".join(sorted(set(string.printable) - set("\t\r\x0b\x0c")))
    save_checkpoint(CharRNN(len(chars), chars, hidden_size=16, num_layers=1), tmp_path / "char_rnn.ckpt")
    save_checkpoint(translator, tmp_path / "translator.ckpt")
    (tmp_path / "sentences.en").write_text("a man runs .\n\nthe dog jumps over the ball\n")
    pairs = tmp_path / "my-pairs"  # for the fine-tuning example: everyday sentences, as the Tatoeba
    pairs.mkdir()
    english = ["I like tea .", "Where is the station ?", "She reads a book .", "We are late ."] * 10
    french = ["J'aime le thé .", "Où est la gare ?", "Elle lit un livre .", "Nous sommes en retard ."] * 10
    for split in ("train", "val", "test"):
        (pairs / f"{split}.en").write_text("\n".join(english) + "\n")
        (pairs / f"{split}.fr").write_text("\n".join(french) + "\n")
    (tmp_path / "my-text.txt").write_text("ROMEO:\nGood morrow, friend; what news from Mantua?\n" * 200)
    return tmp_path


def run_zoo(line: str, monkeypatch) -> None:
    """``line`` as the shell would run it (in this process, to save the start-up): quotes, ``< file`` and ``> file``."""
    words = shlex.split(line)[1:]
    monkeypatch.setattr(sys, "argv", ["zoo"])  # pytest's own arguments are not the command's
    if "<" in words:
        at = words.index("<")
        monkeypatch.setattr(sys, "stdin", open(words[at + 1], encoding="utf-8"))  # noqa: SIM115 (closed with the test)
        del words[at : at + 2]
    if ">" in words:
        del words[words.index(">") :]  # the output is checked on stdout instead
    try:
        main(words)
    except SystemExit as done:  # --print_config exits when it has printed
        assert done.code in (0, None), done.code


def test_yaml_blocks_use_real_trainer_options():
    """The distributed example cannot run here (GPUs, nodes); its keys must still be Trainer arguments."""
    blocks = [yaml.safe_load(code) for language, code in BLOCKS if language == "yaml"]
    assert blocks
    accepted = inspect.signature(lightning.Trainer).parameters
    for block in blocks:
        assert set(block["trainer"]) <= set(accepted), set(block["trainer"]) - set(accepted)


def test_the_readme_has_the_blocks_this_test_runs():
    assert len(PYTHON) >= 5 and any(line.startswith(TRAINING) for line in ZOO_LINES)


# What each Python block shows its reader (the block named by a line it holds): a pattern its output must match.
SHOWS = {
    # Shakespeare-like text, two scored continuations, the shipped translator's French, an n-best list of 3.
    'print(model.generate_text("ROMEO:", 200': r"(?s)\A(?=.*\b(the|and|of|to)\b).{190,200}\n(-\d+\.\d{3} '.*'\n){2}"
    r"\['Un homme .*v[ée]lo.*', '.*chiens .*'\]\n\[\[(\('[^']*', -\d+\.\d+\)(, )?){3}\]\]\Z",
    "class TinyGRULM": r"trained 20 steps, carried state detached: True",
    "tokenizers=translator.tokenizers": r"^\['.+'\]$",  # (after the Trainer's progress bars)
    "BucketBatchSampler": r"^\d+ batches; the first is \(\d+, \d+\) and \(\d+, \d+\)$",
    "class MyCharLM": r"^(\[\(\[[\d, ]+\], -\d+\.\d+\), \(\[[\d, ]+\], -\d+\.\d+\)\]\n){2}tensor\(\[[\d, ]+\]\)$",
    "from zoo.modules.attention import Attention": r"torch.Size\(\[2, 128\]\) tensor\(\[1.0+, 1.0+\].*\) tensor\(\[0., 0.\].*\)\ntorch.Size\(\[2, 3, 128\]\)",
}


def test_every_python_block_has_an_expected_output():
    assert all(sum(key in code for code in PYTHON) == 1 for key in SHOWS) and len(SHOWS) == len(PYTHON)


@pytest.mark.parametrize("code", PYTHON, ids=[code.splitlines()[-1][:40] for code in PYTHON])
def test_python_block_runs(code, reader_folder, monkeypatch, capsys):
    monkeypatch.chdir(reader_folder)
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    (pattern,) = [pattern for key, pattern in SHOWS.items() if key in code]
    out = capsys.readouterr().out.strip()
    assert re.search(pattern, out, flags=re.M), out[-2000:]


@pytest.mark.parametrize("line", ZOO_LINES)
def test_zoo_line_runs(line, reader_folder, monkeypatch, capsys):
    if line.startswith(TRAINING):
        monkeypatch.chdir(REPO)  # the configs' paths are relative to the repository, as in the README
        line = line.replace("runs/seq-zoo/<run>/checkpoints/last.ckpt", str(reader_folder / "translator.ckpt"))
        run_zoo(f"{line} --print_config", monkeypatch)
        assert "class_path" in capsys.readouterr().out
    else:
        monkeypatch.chdir(reader_folder)
        if "--engine ctranslate2" in line:  # the folder the README's line before writes
            run_zoo(
                "zoo export --pretrained transformer-multi30k-en-fr --format ctranslate2 --out ct2-en-fr", monkeypatch
            )
            capsys.readouterr()
        run_zoo(line, monkeypatch)
        assert capsys.readouterr().out.strip() or (reader_folder / "my-char-rnn" / "model.safetensors").is_file()
