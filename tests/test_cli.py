"""`zoo fit` and `zoo generate` as a user runs them: real subprocesses, W&B offline, tiny sizes."""

import sys

import pytest

from tests.conftest import REPO, only, run_zoo, zoo_here
from tests.wandb_records import config_keys, history_rows
from zoo import CharRNN
from zoo.cli import main

STATEFUL = REPO / "configs" / "char_rnn" / "shakespeare_stateful.yaml"
TINY = [
    "--model.init_args.hidden_size",
    "32",
    "--model.init_args.num_layers",
    "1",
    "--data.init_args.seq_len",
    "16",
    "--data.init_args.batch_size",
    "4",
    "--trainer.max_steps",
    "12",  # more than the throughput monitor's window (10 batches)
    "--trainer.val_check_interval",
    "3",
    "--trainer.limit_val_batches",
    "2",
    "--trainer.log_every_n_steps",
    "1",
    "--trainer.enable_progress_bar",
    "false",
]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny stateful run of the shipped config on a small corpus."""
    from datamodules.shakespeare_plays import shakespeare_text

    work = tmp_path_factory.mktemp("run")
    (work / "corpus.txt").write_text(shakespeare_text()[:60_000])
    result = run_zoo("fit", "--config", str(STATEFUL), "--data.init_args.source", "corpus.txt", *TINY, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work, result


def test_fit_logs_metrics_samples_and_the_nested_config_to_wandb(trained_run):
    work, result = trained_run
    assert "LightningCLI's args parameter" not in result.stderr  # Lightning's warning on a CLI given its argv
    run_dir = only((work / "runs" / "wandb").glob("offline-run-*"))
    run_file = only(run_dir.glob("run-*.wandb"))
    logged = set().union(*history_rows(run_file))
    throughput = ("train/device/items_per_sec", "train/device/flops_per_sec")  # Lightning's ThroughputMonitor
    for key in ("train/loss_step", "train/bpc_step", "val/loss", "val/bpc", *throughput, "lr-Adam"):
        assert key in logged, f"{key} missing from W&B history: {sorted(logged)}"
    rows = [row for row in history_rows(run_file) if "train/device/items_per_sec" in row]
    assert all(row["train/device/items_per_sec"] > 0 for row in rows)  # target tokens per second
    assert any(key.startswith("samples/") for key in logged)  # the table of generated samples
    keys = config_keys(run_file)
    assert {"model", "data", "trainer"} <= keys
    assert "hidden_size" not in keys and "vocab_size" not in keys  # nested once, not flattened again
    saved = (run_dir / "files" / "lightning_config.yaml").read_text()
    assert "zoo.CharRNN" in saved and "HiddenStateCallback" in saved


def test_checkpoint_rebuilds_the_model_with_linked_vocab_and_generates(trained_run, capsys):
    work, _ = trained_run
    last = only(work.glob("runs/seq-zoo/*/checkpoints/last.ckpt"))
    model = CharRNN.load_from_checkpoint(last)
    assert model.hparams.vocab_size == len(model.vocab) > 40 and model.hparams.hidden_size == 32
    assert model.training_data["source"] == "corpus.txt"  # the DataModule's arguments, for model cards

    def generate(*options):  # in this process: saves a start-up per call
        code, message = zoo_here("generate", "--checkpoint", str(last), "--prompt", "ROMEO:", *options)
        assert code == 0, message
        return capsys.readouterr().out

    sample = ["--length", "80", "--temperature", "0.8"]
    first = generate(*sample, "--seed", "0")
    assert first.startswith("ROMEO:") and len(first) == len("ROMEO:") + 80 + 1  # the prompt, 80 characters, a newline
    assert generate(*sample, "--seed", "0") == first  # a seed repeats its text ...
    assert generate(*sample, "--seed", "1") != first  # ... and another seed gives other text
    assert first[len("ROMEO:") : -1] == model.eval().generate_text(
        "ROMEO:", 80, strategy="sample", temperature=0.8, seed=0
    )
    long = zoo_here("generate", "--checkpoint", str(last), "--prompt", "ROMEO:", "--length", "1500", "--seed", "0")
    out, err = capsys.readouterr()
    assert long == (0, "") and len(out) == len("ROMEO:") + 1500 + 1
    assert "/1500 [" in err and "tok/s" in err  # a long generation shows its progress
    beams = generate("--length", "30", "--strategy", "beam", "--beam-size", "3", "--n-best", "2")
    expected = model.generate_texts("ROMEO:", 30, strategy="beam", beam_size=3, n_best=2)
    assert beams == "".join(
        f"--- {i} (score {score:.4f})\nROMEO:{text}\n" for i, (text, score) in enumerate(expected, 1)
    )
    assert expected[0][1] >= expected[1][1] and expected[0][0] != expected[1][0]


def test_resumed_fit_continues_the_same_wandb_run(trained_run):
    work, _ = trained_run
    last = only(work.glob("runs/seq-zoo/*/checkpoints/last.ckpt"))
    run_id = last.parent.parent.name
    args = ["fit", "--config", str(STATEFUL), "--data.init_args.source", "corpus.txt", *TINY]
    result = run_zoo(*args, "--trainer.max_steps", "15", "--ckpt_path", str(last), cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.name for p in (work / "runs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(name.endswith(run_id) for name in runs)


def test_help_lists_every_command_and_model_options(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["zoo"])

    def run(*args):  # in this process: the start-up of four more subprocesses would cost ~20 s
        with pytest.raises(SystemExit) as done:
            main(list(args))
        return done.value.code, capsys.readouterr().out

    code, text = run("--help")
    assert code == 0
    assert all(f"\n  {command} " in text for command in ("fit", "validate", "test", "generate", "translate", "export"))
    assert run() == (2, text)  # bare `zoo` shows the same, as a usage error
    code, text = run("fit", "--model.help", "zoo.CharRNN")
    assert code == 0 and "tie_embeddings" in text
    code, _ = run("genrate", "--prompt", "x")
    assert "did you mean `zoo generate`?" in code


def test_decoding_flags_come_from_the_one_declaration_of_the_options():
    from dataclasses import fields

    from zoo.cli import generate, translate
    from zoo.generation.options import DecodingOptions

    declared = {f.name: f for f in fields(DecodingOptions)}
    for command, own_defaults in ((generate, {"strategy": "sample"}), (translate, {"beam_size": 5})):
        parser = command.build_parser()
        parsed = vars(parser.parse_args(["--checkpoint", "x"]))
        helps = {a.dest: a.help for a in parser._actions}
        for name in command.OPTIONS:
            assert parsed[name] == own_defaults.get(name, declared[name].default), (command.__name__, name)
            assert helps[name].startswith(declared[name].metadata["help"])


def test_zoo_predict_is_not_offered_and_the_commands_that_use_a_model_are_named():
    code, message = zoo_here("predict", "--config", "x.yaml")
    assert code == 1 and "unknown command 'predict'" in message and "translate" in message and "generate" in message


def test_zoo_cli_gives_onednn_room_for_its_kernels_unless_the_user_chose(monkeypatch, capsys):
    import os

    from zoo.cli.app import PRIMITIVE_CACHE, ZooCLI

    variable, room = PRIMITIVE_CACHE
    monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SystemExit):
        ZooCLI(["--help"])
    assert os.environ[variable] == room
    monkeypatch.setenv(variable, "512")
    with pytest.raises(SystemExit):
        ZooCLI(["--help"])
    assert os.environ[variable] == "512"
