"""`zoo fit` and `zoo generate` as a user runs them: real subprocesses, W&B offline, tiny sizes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.wandb_records import config_keys, history_rows
from zoo import CharRNN
from zoo.cli import main

REPO = Path(__file__).resolve().parents[1]
STATEFUL = REPO / "configs" / "char_rnn" / "shakespeare_stateful.yaml"
TINY = [
    "--model.init_args.hidden_size", "32",
    "--model.init_args.num_layers", "1",
    "--data.init_args.seq_len", "16",
    "--data.init_args.batch_size", "4",
    "--trainer.max_steps", "6",
    "--trainer.val_check_interval", "3",
    "--trainer.limit_val_batches", "2",
    "--trainer.log_every_n_steps", "1",
    "--trainer.enable_progress_bar", "false",
]  # fmt: skip


def zoo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """One tiny stateful run of the shipped config on a small corpus."""
    from datamodules.shakespeare_plays import shakespeare_text

    work = tmp_path_factory.mktemp("run")
    (work / "corpus.txt").write_text(shakespeare_text()[:60_000])
    result = zoo("fit", "--config", str(STATEFUL), "--data.init_args.source", "corpus.txt", *TINY, cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    return work, result


def only(paths):
    paths = list(paths)
    assert len(paths) == 1, paths
    return paths[0]


def test_fit_logs_metrics_samples_and_the_nested_config_to_wandb(trained_run):
    work, _ = trained_run
    run_dir = only((work / "runs" / "wandb").glob("offline-run-*"))
    run_file = only(run_dir.glob("run-*.wandb"))
    logged = set().union(*history_rows(run_file))
    for key in ("train/loss_step", "train/bpc_step", "val/loss", "val/bpc", "train/tokens_per_s", "lr-Adam"):
        assert key in logged, f"{key} missing from W&B history: {sorted(logged)}"
    assert any(key.startswith("samples/") for key in logged)  # the table of generated samples
    keys = config_keys(run_file)
    assert {"model", "data", "trainer"} <= keys
    assert "hidden_size" not in keys and "vocab_size" not in keys  # nested once, not flattened again
    saved = (run_dir / "files" / "lightning_config.yaml").read_text()
    assert "zoo.CharRNN" in saved and "HiddenStateCallback" in saved


def test_checkpoint_rebuilds_the_model_with_linked_vocab_and_generates(trained_run):
    work, _ = trained_run
    last = only(work.glob("runs/seq-zoo/*/checkpoints/last.ckpt"))
    model = CharRNN.load_from_checkpoint(last)
    assert model.hparams.vocab_size == len(model.vocab) > 40 and model.hparams.hidden_size == 32
    result = zoo("generate", "--checkpoint", str(last), "--prompt", "ROMEO:", "--length", "80",
                 "--temperature", "0.8", "--seed", "0", cwd=work)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ROMEO:") and len(result.stdout) >= 86
    result = zoo("generate", "--checkpoint", str(last), "--prompt", "ROMEO:", "--length", "30",
                 "--strategy", "beam", "--beam-size", "3", "--n-best", "2", cwd=work)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("--- 1 (score ") and "\n--- 2 (score " in result.stdout


def test_resumed_fit_continues_the_same_wandb_run(trained_run):
    work, _ = trained_run
    last = only(work.glob("runs/seq-zoo/*/checkpoints/last.ckpt"))
    run_id = last.parent.parent.name
    args = ["fit", "--config", str(STATEFUL), "--data.init_args.source", "corpus.txt", *TINY]
    result = zoo(*args, "--trainer.max_steps", "9", "--ckpt_path", str(last), cwd=work)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.name for p in (work / "runs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and all(name.endswith(run_id) for name in runs)


def test_bad_input_gets_a_clear_error(trained_run, tmp_path):
    work, _ = trained_run
    last = only(work.glob("runs/seq-zoo/*/checkpoints/last.ckpt"))
    cases = {
        "Fix: use only these characters": ["generate", "--checkpoint", str(last), "--prompt", "ROMEO\u00e9"],
        "temperature must be > 0": ["generate", "--checkpoint", str(last), "--temperature", "0"],
        "no checkpoint at": ["generate", "--checkpoint", str(tmp_path / "missing.ckpt")],
        "neither a file nor a built-in": ["fit", "--config", str(STATEFUL), "--data.init_args.source", "nope.txt"],
        "hiden_size": ["fit", "--config", str(STATEFUL), "--model.init_args.hiden_size", "8"],
    }
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(last.read_bytes()[:5000])
    cases["truncated, corrupt"] = ["generate", "--checkpoint", str(truncated)]
    for expected, args in cases.items():
        result = zoo(*args, cwd=work)
        assert result.returncode != 0, args
        assert expected in result.stderr, (args, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, (args, result.stderr[-2000:])


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
    assert code == 0 and "tie_weights" in text
    code, _ = run("genrate", "--prompt", "x")
    assert "did you mean `zoo generate`?" in code
