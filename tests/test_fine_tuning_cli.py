"""`zoo fit --pretrained`: a new run from a trained model's weights, class, sizes and tokenizers, with lineage in
the checkpoint and the W&B config; every contradiction or bad input is refused in one line, before anything is
written. The parents are the shipped models (as a user fine-tunes them); the new data are small files."""

from pathlib import Path

import pytest
import torch
import wandb
import yaml

from tests.conftest import REPO, only, zoo_here
from tests.wandb_records import config_values
from zoo import load_model, load_pretrained
from zoo.hub.pretrained import registry

TRANSLATOR = "transformer-multi30k-en-fr"
CHAR_RNN = "char-rnn-shakespeare"
PAIRS = [
    ("I am hungry.", "J'ai faim."),
    ("Where is the station?", "Où est la gare ?"),
    ("We like tea.", "Nous aimons le thé."),
    ("She is asleep.", "Elle dort."),
    ("Open the door.", "Ouvre la porte."),
    ("It is cold today.", "Il fait froid aujourd'hui."),
]


def write_config(
    folder: Path, data: dict, trainer: dict | None = None, model: dict | None = None, name: str = "fine_tune"
) -> Path:
    """A fine-tuning config as a user writes one: no model section needed, 3 steps, W&B offline."""
    callbacks = [{"class_path": "callbacks.ModelCheckpoint", "init_args": {"save_last": True}}]
    if data["class_path"].endswith("CharDataModule"):
        callbacks.append({"class_path": "callbacks.HiddenStateCallback", "init_args": {"mode": "reset"}})
    config = {
        "trainer": {
            "callbacks": callbacks,
            "max_steps": 3,
            "limit_val_batches": 1,
            "enable_progress_bar": False,
            "logger": {
                "class_path": "lightning.pytorch.loggers.WandbLogger",
                "init_args": {"project": "seq-zoo", "save_dir": str(folder / "runs")},
            },
            **(trainer or {}),
        },
        "data": data,
        **({"model": model} if model else {}),
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def pairs_folder(tmp_path) -> Path:
    folder = tmp_path / "my-pairs"
    folder.mkdir()
    for split, repeat in (("train", 20), ("val", 1), ("test", 1)):
        (folder / f"{split}.tsv").write_text("".join(f"{en}\t{fr}\n" for en, fr in PAIRS * repeat))
    return folder


def translation_data(folder: Path, **extra) -> dict:
    return {
        "class_path": "datamodules.TranslationDataModule",
        "init_args": {"source": str(folder), "pair": "en-fr", "batch_size": 8, "max_tokens": None, **extra},
    }


def test_fit_pretrained_starts_a_new_run_from_the_shipped_translator(pairs_folder, tmp_path, monkeypatch, recwarn):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, translation_data(pairs_folder))
    assert zoo_here("fit", "--config", str(config), "--pretrained", TRANSLATOR) == (0, "")
    # The parent's tokenizers reach the DataModule without jsonargparse warning that it cannot write them.
    assert not [
        str(w.message)[:200] for w in recwarn if "serialize" in str(w.message) or "round-trip" in str(w.message)
    ]
    last = only(tmp_path.glob("runs/seq-zoo/*/checkpoints/last.ckpt"))
    checkpoint = torch.load(last, weights_only=True)
    parent = load_pretrained(TRANSLATOR)
    # The parent's class, sizes and tokenizers (the config names none of them); no tokenizer trained.
    assert checkpoint["hyper_parameters"]["_class_path"].endswith("Transformer")
    assert checkpoint["hyper_parameters"]["d_model"] == parent.hparams.d_model == 256
    assert checkpoint["hyper_parameters"]["src_tokenizer"] == parent.hparams.src_tokenizer
    assert not list((tmp_path / "cache").rglob("tokenizer-*.json"))
    # A new run: its own step counter and schedule, from the parent's weights.
    assert checkpoint["global_step"] == 3 and checkpoint["lr_schedulers"][0]["last_epoch"] == 3
    digest = registry()[TRANSLATOR]["files"]["SHA256SUMS"]
    assert checkpoint["parent"]["name"] == TRANSLATOR and checkpoint["parent"]["sha256"] == digest
    model = load_model(last)
    moved = [k for k, v in model.state_dict().items() if not torch.equal(v, parent.state_dict()[k])]
    assert moved and len(moved) < len(parent.state_dict()) * 2  # trained on from the parent's weights
    assert max((v - parent.state_dict()[k]).abs().max().item() for k, v in model.state_dict().items()) < 0.05
    # W&B: a run of its own whose config names the parent and its digest.
    wandb.finish()  # (a `zoo` process ends its run at exit; this one runs in the test's process)
    run_file = only(tmp_path.glob("runs/wandb/offline-run-*/run-*.wandb"))
    logged = config_values(run_file)
    assert logged["pretrained"] == TRANSLATOR
    assert logged["parent"] == {"name": TRANSLATOR, "sha256": digest, "class_path": "zoo.Transformer"}

    # Resuming the fine-tuning run needs the parent again (its tokenizers read the data), and says so.
    resume = ["fit", "--config", str(config), "--trainer.max_steps", "4", "--ckpt_path", str(last)]
    code, message = zoo_here(*resume)
    assert code == 1 and f"Fix: add --pretrained {TRANSLATOR}" in message
    assert zoo_here(*resume, "--pretrained", TRANSLATOR) == (0, "")
    assert torch.load(last, weights_only=True)["global_step"] == 4


@pytest.mark.parametrize(
    "flags, model, expected",
    [
        (["--model.init_args.d_model", "512"], None, "sets model d_model 512, but --pretrained"),
        ([], {"class_path": "zoo.Seq2Seq"}, "the config's model is a Seq2Seq, but --pretrained"),
        (["--data.init_args.tokenizer", "word"], None, "sets data tokenizer 'word', but"),
        (["--data.init_args.vocab_size", "4000"], None, "sets data vocab_size 4000, but"),
    ],
)
def test_a_config_that_contradicts_the_parent_is_refused_before_anything_is_written(
    pairs_folder, tmp_path, monkeypatch, flags, model, expected
):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, translation_data(pairs_folder), model=model)
    code, message = zoo_here("fit", "--config", str(config), "--pretrained", TRANSLATOR, *flags)
    assert code == 1 and expected in message and "Fix:" in message and "\n" not in message
    assert not (tmp_path / "runs").exists()


def test_bad_pretrained_inputs_are_one_line_each(pairs_folder, tmp_path, monkeypatch, translator_checkpoint):
    monkeypatch.chdir(tmp_path)
    config = str(write_config(tmp_path, translation_data(pairs_folder)))
    code, message = zoo_here("fit", "--config", config, "--pretrained", "no-such-model")
    assert code == 1 and "unknown pretrained model 'no-such-model'" in message and TRANSLATOR in message
    # A checkpoint of another class than the config's model.
    char_config = write_config(  # (its data do not matter: refused before they are read)
        tmp_path, translation_data(pairs_folder), model={"class_path": "zoo.CharRNN"}, name="char"
    )
    code, message = zoo_here("fit", "--config", str(char_config), "--pretrained", str(translator_checkpoint))
    assert code == 1 and "is a CharRNN, but --pretrained" in message and "is a Transformer" in message
    # A fine-tuning config (model options, no class) run without --pretrained.
    shipped = REPO / "configs" / "transformer" / "tatoeba_en_fr_fine_tune.yaml"
    code, message = zoo_here("fit", "--config", str(shipped))
    assert code == 1 and "no model class: it is a fine-tuning config. Fix: add --pretrained" in message
    # An empty fine-tuning corpus.
    for split in ("train", "val"):
        (pairs_folder / f"{split}.tsv").write_text("")
    code, message = zoo_here("fit", "--config", config, "--pretrained", TRANSLATOR)
    assert code == 1 and "hold no pair" in message and "\n" not in message
    assert not (tmp_path / "runs").exists()


def test_test_pretrained_scores_the_shipped_model_on_the_configs_data(pairs_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path, translation_data(pairs_folder), trainer={"logger": False})
    assert zoo_here("test", "--config", str(config), "--pretrained", TRANSLATOR) == (0, "")
    assert "test/bleu" in capsys.readouterr().out


def test_new_characters_are_refused_by_name_unless_the_vocabulary_is_extended(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = tmp_path / "my-text.txt"
    text.write_text("Où est la fenêtre? Là-bas, près du café.\n" * 300, encoding="utf-8")
    data = {
        "class_path": "datamodules.CharDataModule",
        "init_args": {"source": str(text), "seq_len": 32, "batch_size": 4},
    }
    config = str(write_config(tmp_path, data, trainer={"logger": False}))
    code, message = zoo_here("fit", "--config", config, "--pretrained", CHAR_RNN)
    assert code == 1 and "'ù' (" in message and "'é' (" in message and "extend_vocab: true" in message

    assert zoo_here("fit", "--config", config, "--pretrained", CHAR_RNN, "--data.init_args.extend_vocab", "true") == (
        0,
        "",
    )
    model = load_model(only(tmp_path.glob("**/checkpoints/last.ckpt")))
    parent = load_pretrained(CHAR_RNN)
    assert model.vocab.chars.startswith(parent.vocab.chars) and set("ùéêà") <= set(model.vocab.chars)
    assert model.hparams.hidden_size == parent.hparams.hidden_size and model.parent["name"] == CHAR_RNN
    assert set(model.generate_text("Où", 40)) <= set(model.vocab.chars)


def test_fit_help_offers_pretrained(capsys):
    assert zoo_here("fit", "--help") == (0, "")
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--pretrained PRETRAINED" in help_text and "fit fine-tunes it on the config's data" in help_text
