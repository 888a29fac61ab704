"""Every `zoo` command ends a user's mistake with one clean line that names the problem and the fix; the
traceback is there for bug reports with ZOO_TRACEBACK=1. (In this process: each case costs no start-up.)"""

import json
import pickle
import re

import pytest
import torch

from tests.conftest import REPO, save_checkpoint, toy_data_args, zoo_here
from zoo import CharRNN, TransformerLM
from zoo.hub.bundles import export_bundle, write_checksums

STATEFUL = str(REPO / "configs" / "char_rnn" / "shakespeare_stateful.yaml")
SEQ2SEQ = str(REPO / "configs" / "seq2seq" / "multi30k_en_fr_bahdanau.yaml")
VOCAB = "\nROMEabcdefgh :."


@pytest.fixture
def char_checkpoint(tmp_path):
    torch.manual_seed(0)
    return save_checkpoint(CharRNN(len(VOCAB), VOCAB, hidden_size=8, num_layers=1), tmp_path / "char.ckpt")


def one_clean_line(capsys, *args) -> str:
    code, message = zoo_here(*args)
    err = capsys.readouterr().err
    assert code != 0, args
    text = message or err.strip().splitlines()[-1]  # sys.exit(message), or an argparse-style exit printing it
    assert "Traceback" not in err and "\n" not in text.strip(), err[-2000:]
    return text


def test_inference_commands(char_checkpoint, tmp_path, capsys):
    cases = {
        "Fix: use only these characters": ["--prompt", "ROMEO\u00e9"],
        "temperature must be > 0": ["--temperature", "0"],
        "top_p must be a number in (0, 1], got 1.5": ["--top-p", "1.5"],
        "top_p must be a number in (0, 1], got nan": ["--top-p", "nan"],
        "temperature must be a finite number in [0, inf), got inf": ["--temperature", "inf"],
        "length_penalty must be a finite number in (-inf, inf), got nan": ["--length-penalty", "nan"],
        "--length must lie in 1..20,000": ["--length", "100000"],
    }
    for expected, args in cases.items():
        assert expected in one_clean_line(capsys, "generate", "--checkpoint", str(char_checkpoint), *args)
    assert "no checkpoint at" in one_clean_line(capsys, "generate", "--checkpoint", str(tmp_path / "missing.ckpt"))
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(char_checkpoint.read_bytes()[:3000])
    for command in ("generate", "translate", "export"):
        extra = ["--out", str(tmp_path / "out")] if command == "export" else []
        assert "truncated, corrupt" in one_clean_line(capsys, command, "--checkpoint", str(truncated), *extra)


def test_each_fix_for_a_prompt_too_long_for_the_context_works(tmp_path, capsys):
    torch.manual_seed(0)
    lm = TransformerLM(len(VOCAB), VOCAB, d_model=16, heads=2, layers=1, ffn_dim=32, max_positions=32)
    command = ["generate", "--checkpoint", str(save_checkpoint(lm, tmp_path / "lm.ckpt"))]
    prompt = ("ROMEO: " * 6)[:40]
    message = one_clean_line(capsys, *command, "--prompt", prompt, "--length", "10")
    assert "exceeds this model's 32 positions" in message and "at most -" not in message
    keep = int(re.search(r"shorten the prompt to at most (\d+) tokens", message)[1])
    assert zoo_here(*command, "--prompt", prompt[-keep:], "--length", "10") == (0, "")
    message = one_clean_line(capsys, *command, "--prompt", prompt[:10], "--length", "40")
    fewer = int(re.search(r"ask for at most (\d+) new tokens", message)[1])
    assert zoo_here(*command, "--prompt", prompt[:10], "--length", str(fewer)) == (0, "")
    assert len(capsys.readouterr().out) == 10 + fewer + 1  # the prompt, the new text and a newline


def test_a_bundle_whose_config_has_an_unknown_argument(char_checkpoint, tmp_path, capsys):
    bundle = export_bundle(char_checkpoint, tmp_path / "bundle")
    config = json.loads((bundle / "config.json").read_text())
    config["init_args"]["hiden_size"] = 8
    (bundle / "config.json").write_text(json.dumps(config))
    write_checksums(bundle)  # (a damaged listing is caught first: see test_pretrained)
    message = one_clean_line(capsys, "generate", "--checkpoint", str(bundle))
    assert "hiden_size" in message and "Fix:" in message


FIT_CASES = {  # option -> (value, what the message must say)
    "--data.init_args.batch_size": ("0", "batch_size must be a whole number >= 1, got 0"),
    "--data.init_args.seq_len": ("0", "seq_len must be a whole number >= 1, got 0"),
    "--data.init_args.val_fraction": ("0", "val_fraction must be a number in (0, 1), got 0"),
    "--model.init_args.hidden_size": ("0", "hidden_size must be a whole number >= 1, got 0"),
    "--model.init_args.dropout": ("1.5", "dropout must be a number in [0, 1), got 1.5"),
    "--model.init_args.hiden_size": ("8", "hiden_size"),
    "--data.init_args.source": ("nope.txt", "neither a file nor a built-in"),
    "--ckpt_path": ("missing.ckpt", "no checkpoint at missing.ckpt"),
}


@pytest.mark.parametrize("option", FIT_CASES)
def test_bad_training_options(option, small_corpus, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    value, expected = FIT_CASES[option]
    source = [] if option == "--data.init_args.source" else ["--data.init_args.source", str(small_corpus)]
    assert expected in one_clean_line(capsys, "fit", "--config", STATEFUL, *source, option, value)


NON_FINITE_CASES = [  # a config's section, key, YAML value, what the message must say
    ("model", "learning_rate", ".nan", "learning_rate must be a finite number in (0, inf), got nan"),
    ("model", "learning_rate", ".inf", "learning_rate must be a finite number in (0, inf), got inf"),
    ("model", "dropout", ".nan", "dropout must be a number in [0, 1), got nan"),
    ("trainer", "gradient_clip_val", ".inf", "gradient_clip_val must be a finite number in [0, inf), got inf"),
    ("trainer", "gradient_clip_val", ".nan", "gradient_clip_val must be a finite number in [0, inf), got nan"),
]


@pytest.mark.parametrize("section, key, value, expected", NON_FINITE_CASES)
def test_nan_and_infinity_in_a_config_are_refused_by_name(
    section, key, value, expected, small_corpus, tmp_path, monkeypatch, capsys
):
    # (On the command line jsonargparse already refuses "nan" for a float; a YAML file's .nan reaches us.)
    monkeypatch.chdir(tmp_path)
    nested = f"  init_args:\n    {key}: {value}\n" if section == "model" else f"  {key}: {value}\n"
    (tmp_path / "bad.yaml").write_text(f"{section}:\n{nested}")
    source = ["--data.init_args.source", str(small_corpus)]
    assert expected in one_clean_line(capsys, "fit", "--config", STATEFUL, "--config", "bad.yaml", *source)
    assert not (tmp_path / "runs").exists()


def test_a_pickled_checkpoint_and_a_translation_max_len_that_drops_everything(
    small_corpus, toy_folder, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    pickled = tmp_path / "pickled.ckpt"
    pickled.write_bytes(pickle.dumps({"state_dict": {}, "anything": object()}))
    message = one_clean_line(
        capsys, "fit", "--config", STATEFUL, "--data.init_args.source", str(small_corpus), "--ckpt_path", str(pickled)
    )
    assert "never unpickled" in message
    data = toy_data_args(toy_folder, vocab_size=60)
    message = one_clean_line(capsys, "fit", "--config", SEQ2SEQ, *data, "--data.init_args.max_len", "1")
    assert "max_len 1 drops every one of the 400 training pairs" in message
    assert not (tmp_path / "runs").exists()  # found before a W&B run or log folder was started


def test_the_traceback_is_there_for_bug_reports(small_corpus, monkeypatch):
    monkeypatch.setenv("ZOO_TRACEBACK", "1")
    with pytest.raises(ValueError, match="batch_size must be a whole number"):
        zoo_here(
            "fit",
            "--config",
            STATEFUL,
            "--data.init_args.source",
            str(small_corpus),
            "--data.init_args.batch_size",
            "0",
        )
