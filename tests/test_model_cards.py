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
