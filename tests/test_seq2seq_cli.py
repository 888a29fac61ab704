"""`zoo fit` then `zoo test` on a Seq2Seq config, as a user runs them (tiny sizes, a local corpus)."""

from pathlib import Path

from tests.conftest import only, run_zoo, toy_data_args, zoo_here
from zoo import load_model

REPO = Path(__file__).resolve().parents[1]


def test_fit_then_test_a_seq2seq_checkpoint(toy_folder, monkeypatch, capsys):
    work = toy_folder.parent
    config = str(REPO / "configs" / "seq2seq" / "multi30k_en_fr_luong.yaml")
    data = toy_data_args(toy_folder, vocab_size=100, max_tokens=400)
    tiny = [
        "--model.init_args.embedding_dim",
        "16",
        "--model.init_args.hidden_size",
        "32",
        "--trainer.max_steps",
        "8",
        "--trainer.val_check_interval",
        "4",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.enable_progress_bar",
        "false",
    ]
    test_files = {path: path.read_bytes() for path in toy_folder.glob("test.*")}
    for path in test_files:
        path.unlink()  # a fit reads the training and validation files only
    fit = run_zoo("fit", "--config", config, *data, *tiny, cwd=work)
    assert fit.returncode == 0, fit.stderr[-3000:]
    last = only(work.glob("runs/seq-zoo/*/checkpoints/last.ckpt"))

    # `zoo test` in this process (fit above ran as a user's separate process), without W&B here.
    monkeypatch.chdir(work)
    code, message = zoo_here(
        "test", "--config", config, *data, *tiny, "--trainer.logger", "false", "--ckpt_path", str(last)
    )
    assert code != 0 and "has no test.en" in message and "Fix: add the file" in message
    for path, content in test_files.items():  # the fix
        path.write_bytes(content)
    assert zoo_here(
        "test", "--config", config, *data, *tiny, "--trainer.logger", "false", "--ckpt_path", str(last)
    ) == (0, "")
    assert "test/bleu" in capsys.readouterr().out

    model = load_model(last)  # no DataModule, no config
    assert model.hparams.attention == "general" and model.hparams.src_vocab_size <= 100
    sentences, beam = ["a man runs", "the red ball"], {"strategy": "beam", "beam_size": 3}
    assert model.translate(sentences, **beam) == [
        model.translate([s], **beam)[0] for s in sentences
    ]  # batched == alone
    (hypotheses,) = model.translate_n_best(["a man runs"], strategy="beam", beam_size=3, n_best=3)
    assert hypotheses[0][0] == model.translate(["a man runs"], **beam)[0]
    assert [score for _, score in hypotheses] == sorted((score for _, score in hypotheses), reverse=True)

    other = ["--data.init_args.vocab_size", "60"]  # a different vocabulary than the checkpoint's
    code, message = zoo_here("test", "--config", config, *data, *tiny, *other, "--ckpt_path", str(last))
    assert code != 0 and "was trained on other data" in message
    assert "Traceback" not in capsys.readouterr().err
