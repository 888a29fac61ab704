"""Model cards in the Hub's format (YAML metadata, the training data and its limits), and bundles loaded from
the local Hugging Face Hub cache by repository id."""

import shutil

import lightning as L
import pytest

from datamodules import TranslationDataModule
from zoo import CheckpointError, load_pretrained
from zoo.hub.bundles import export_bundle
from zoo.hub.model_card import split_card
from zoo.hub.pretrained import PACKAGE_DIR
from zoo.interop.transformers_export import export_transformers


def test_a_trained_translators_cards_name_its_languages_and_data(translator, toy_folder, tmp_path):
    """The DataModule's arguments travel in the checkpoint of a real run, into the bundle and its exports."""
    data = TranslationDataModule(str(toy_folder), pair="en-xx", vocab_size=60, max_tokens=500)
    translator.hparams["_class_path"] = "zoo.Transformer"  # as `zoo fit` (LightningCLI) records it
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(translator.train(), datamodule=data)
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    bundle = export_bundle(tmp_path / "run.ckpt", tmp_path / "bundle")
    card = split_card((bundle / "README.md").read_text())[0]
    assert card["library_name"] == "seq-zoo" and card["language"] == ["en", "xx"]
    assert card["pipeline_tag"] == "translation" and card["license"] == "mit" and card["metrics"] == ["bleu"]
    assert "works on text like its training text and poorly on anything else" in (bundle / "README.md").read_text()
    exported = export_transformers(load_pretrained(bundle), tmp_path / "hf")
    assert split_card((exported / "README.md").read_text())[0]["language"] == ["en", "xx"]
    assert split_card((exported / "README.md").read_text())[0]["library_name"] == "transformers"


@pytest.mark.parametrize(
    "name, limit",
    [
        ("transformer-multi30k-en-fr", "translates other kinds of text poorly"),
        ("char-rnn-shakespeare", "has no meaning, facts or memory"),
    ],
)
def test_the_shipped_cards_state_their_domain_and_its_limits(name, limit):
    card = (PACKAGE_DIR / name / "README.md").read_text()
    metadata = split_card(card)[0]
    assert {"library_name", "license", "language", "datasets", "metrics", "pipeline_tag"} <= set(metadata)
    assert "## Training data and limits" in card and limit in card


def hub_cache_with(bundle, cache, repo_id: str):
    """A repository laid out as huggingface_hub's cache keeps it: refs/main names the snapshot folder."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(bundle, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_a_bundle_in_the_hugging_face_cache_loads_by_repo_id_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    hub_cache_with(PACKAGE_DIR / "transformer-multi30k-en-fr", tmp_path / "hub", "someone/en-fr-captions")
    model = load_pretrained("someone/en-fr-captions")
    assert model.translate(["Two dogs play in the snow."]) == load_pretrained("transformer-multi30k-en-fr").translate(
        ["Two dogs play in the snow."]
    )
    with pytest.raises(CheckpointError, match="HF_HUB_OFFLINE is set"):
        load_pretrained("someone/not-downloaded")
    snapshot = next((tmp_path / "hub").glob("models--*/snapshots/*"))
    (snapshot / "model.safetensors").write_bytes(b"damaged")
    with pytest.raises(CheckpointError, match="does not match its sha256"):
        load_pretrained("someone/en-fr-captions")


def test_a_fine_tuned_models_card_names_its_parent_both_datasets_and_the_scores_before_and_after(
    translator, toy_folder, tmp_path, monkeypatch
):
    import yaml

    from tests.conftest import only, zoo_here
    from zoo.hub.bundles import sha256_of

    data = TranslationDataModule(str(toy_folder), pair="en-xx", vocab_size=60, max_tokens=500)
    translator.hparams["_class_path"] = "zoo.Transformer"
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(translator.train(), datamodule=data)
    trainer.save_checkpoint(tmp_path / "parent.ckpt")
    parent = export_bundle(tmp_path / "parent.ckpt", tmp_path / "parent")
    new = tmp_path / "new"  # the same kind of sentences, other words' order: a new "domain"
    new.mkdir()
    for split, lines in (("train", 60), ("val", 8), ("test", 8)):
        rows = [f"the child with a red ball {i % 7}\t. {i % 7} ball red a with child the\n" for i in range(lines)]
        (new / f"{split}.tsv").write_text("".join(rows))
    config = tmp_path / "fine_tune.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "trainer": {
                    "max_steps": 2,
                    "logger": False,
                    "enable_progress_bar": False,
                    "limit_val_batches": 1,
                    "callbacks": [
                        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"save_last": True}}
                    ],
                },
                "data": {
                    "class_path": "datamodules.TranslationDataModule",
                    "init_args": {"source": str(new), "pair": "en-xx", "batch_size": 8, "max_tokens": None},
                },
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    assert zoo_here("fit", "--config", str(config), "--pretrained", str(parent)) == (0, "")
    last = only(tmp_path.glob("**/checkpoints/last.ckpt"))
    assert zoo_here("export", "--checkpoint", str(last), "--out", str(tmp_path / "child")) == (0, "")
    child = tmp_path / "child"
    card = (child / "README.md").read_text()
    assert f"## Fine-tuned from {parent}" in card and sha256_of(parent / "SHA256SUMS") in card
    assert f"Parent's training data: {toy_folder} en-xx" in card and f"Fine-tuning data: {new} en-xx" in card
    rows = [line for line in card.splitlines() if line.startswith(("| parent's data", "| fine-tuning data"))]
    assert len(rows) == 2
    for row in rows:  # a BLEU before (the parent) and after (this model) on each dataset
        before, after = (float(cell) for cell in row.strip("|").split("|")[1:])
        assert 0 <= before <= 100 and 0 <= after <= 100
    assert load_pretrained(child).parent["name"] == str(parent)  # the lineage travels in the bundle too
