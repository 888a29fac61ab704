"""Model cards in the Hub's format (YAML metadata, the training data and its limits), and bundles loaded from
the local Hugging Face Hub cache by repository id."""

import re
import shlex
import shutil

import lightning as L
import pytest

from datamodules import TranslationDataModule
from zoo import CheckpointError, load_pretrained
from zoo.hub.bundles import export_bundle
from zoo.hub.model_card import split_card
from zoo.hub.pretrained import PACKAGE_DIR, registry
from zoo.interop.transformers_export import export_transformers

MEASURED_VALUE = re.compile(r"^\| [^|]+ \| (?:[\d.]+ \| )?([\d.]+) \|$", re.MULTILINE)  # a score row's last value


def measured_section(card: str) -> str:
    """The card from its measured scores on (zoo/hub/card_scores.py): its own, or a fine-tuned model's lineage."""
    return card[card.index("## Scores") if "## Scores" in card else card.index("## Fine-tuned from") :]


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


@pytest.mark.parametrize("name", sorted(registry()))
def test_every_shipped_card_states_its_limits_and_the_score_the_zoo_lists_with_its_command(name):
    entry, card = registry()[name], (PACKAGE_DIR / name / "README.md").read_text()
    metadata = split_card(card)[0]
    assert {"library_name", "license", "language", "metrics", "pipeline_tag"} <= set(metadata)  # (datasets: Hub ids)
    assert "## Training data and limits" in card and "**Limits.**" in card
    assert f'zoo.load_pretrained("{name}")' in card  # how to load it, by the name it ships under
    measured = measured_section(card)
    listed = entry["metric"].split()[0]  # "47.52 test BLEU (beam 5)": the number `zoo list` shows
    assert listed in MEASURED_VALUE.findall(measured), f"zoo list says {listed}, the card's scores differ"
    command = "zoo test" if "BLEU" in entry["metric"] else "zoo validate"
    assert f"`{command} --pretrained {name} --data " in measured


@pytest.mark.slow  # a test set decoded with beam 5 per score: about a minute each on a 2-core CPU
@pytest.mark.parametrize("name", sorted(registry()))
def test_every_score_on_a_shipped_card_is_what_the_command_beside_it_prints(name, shared_data, capsys):
    from tests.conftest import zoo_here

    card = (PACKAGE_DIR / name / "README.md").read_text()
    measured = measured_section(card)
    values = [
        v for row in re.findall(r"^\| [^|]+ \|((?: [\d.]+ \|)+)$", measured, re.MULTILINE) for v in row.split("|")
    ]
    values = [v.strip() for v in values if v.strip()]
    commands = re.findall(r"`zoo ((?:test|validate) --pretrained .*?)`", measured)
    assert values and len(values) == len(commands), (values, commands)
    for value, command in zip(values, commands):
        capsys.readouterr()
        assert zoo_here(*shlex.split(command)) == (0, ""), command
        printed = re.search(r"(?:test/bleu|val/loss)\W+([\d.]+)", capsys.readouterr().out)[1]
        assert f"{float(printed):.{len(value.split('.')[1])}f}" == value, command


def test_a_cards_score_is_what_the_command_written_on_it_prints(small_corpus, tmp_path, monkeypatch, capsys):
    """`zoo export` scores the weights as the bundle stores them (float16 here), and the one command the card
    gives measures the same number from the bundle."""
    from tests.conftest import REPO, only, zoo_here
    from tests.test_callbacks_never_end_a_run import TINY_MODEL, TINY_RUN

    monkeypatch.chdir(tmp_path)
    config = str(REPO / "configs" / "char_rnn" / "shakespeare_stateless.yaml")
    tiny = ["--data.init_args.source", str(small_corpus), *TINY_RUN, *TINY_MODEL["char_rnn"]]
    assert zoo_here("fit", "--config", config, *tiny) == (0, "")
    last = only(tmp_path.glob("**/last.ckpt"))
    assert zoo_here("export", "--checkpoint", str(last), "--out", "bundle", "--dtype", "float16") == (0, "")
    card = (tmp_path / "bundle" / "README.md").read_text()
    (value,) = MEASURED_VALUE.findall(measured_section(card))
    command = re.search(r"Reproduce: `zoo (validate --pretrained bundle .*)`", card)[1]
    capsys.readouterr()
    assert zoo_here(*shlex.split(command)) == (0, "")
    printed = re.search(r"val/loss\W+([\d.]+)", capsys.readouterr().out)[1]
    assert f"{float(printed):.4f}" == value


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
                    "callbacks": [{"class_path": "callbacks.ModelCheckpoint", "init_args": {"save_last": True}}],
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
    # one command per score: the parent's by its name, this model's by its folder
    commands = re.findall(r"^- (parent|this model) on the .*: `zoo test --pretrained (\S+) ", card, re.MULTILINE)
    assert commands == [("parent", str(parent)), ("this model", str(child))] * 2
    assert load_pretrained(child).parent["name"] == str(parent)  # the lineage travels in the bundle too
