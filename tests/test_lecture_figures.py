"""The lecture's figures (docs/make_figures.py) are made, and show what their captions in docs/lecture.md say."""

import importlib.util
import re
import sys

import pytest
import torch

from tests.conftest import REPO
from zoo import load_pretrained
from zoo.demo.beam_tree_figure import beam_tree_figure
from zoo.generation.beam_tree import beam_tree, beam_tree_of_text

spec = importlib.util.spec_from_file_location("make_figures", REPO / "docs" / "make_figures.py")
figures = importlib.util.module_from_spec(spec)
sys.modules["make_figures"] = figures  # (dataclasses look their module up there)
spec.loader.exec_module(figures)


@pytest.fixture(scope="module")
def made():
    """Each figure made once, in quick mode, as `python docs/make_figures.py --quick` makes it."""
    cache = {}

    def make(name):
        if name not in cache:
            cache[name] = figures.FIGURES[name](quick=True)
            assert cache[name].figure.get_axes(), f"{name} drew nothing"
        return cache[name]

    return make


def test_the_lecture_shows_every_figure_the_script_makes():
    lecture = (REPO / "docs" / "lecture.md").read_text()
    for name in figures.FIGURES:
        assert f"images/lecture/{name}.png" in lecture, name
        assert (REPO / "docs" / "images" / "lecture" / f"{name}.png").is_file(), "run python docs/make_figures.py"


def test_the_lectures_python_runs_and_its_assertions_hold(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # one block writes a picture
    namespace = {}
    for block in re.findall(r"```python\n(.*?)```", (REPO / "docs" / "lecture.md").read_text(), re.DOTALL):
        exec(compile(block, "docs/lecture.md", "exec"), namespace)  # in order, as a reader runs them
    assert (tmp_path / "beam.png").is_file()


def test_stateful_rows_continue_across_batches_and_stateless_windows_do_not(made):
    facts = made("stateful_layout").facts
    assert facts["stateful_rows_continue"] and not facts["stateless_rows_continue"]


def test_a_stateful_models_weights_generate_the_same_text_at_batch_one(made):
    facts = made("batch_one_generator").facts
    assert facts["same_text"] and facts["other_seed_differs"]


def test_bucketing_wastes_less_on_padding_than_random_batches(shared_data, made):
    facts = made("padding").facts
    assert facts["bucketed_share"] > facts["random_share"] + 0.2  # 0.81 against 0.46 here


def test_a_tied_output_layer_is_the_embedding_matrix(made):
    facts = made("output_vocabulary").facts
    model = load_pretrained(figures.TRANSLATOR)
    assert facts["tied"] == sum(p.numel() for p in model.parameters())
    assert facts["saved"] == 2 * facts["matrix"]  # joint vocabulary: source embedding and output both shared


def test_the_beam_trees_n_best_is_what_generate_returns(made):
    facts = made("beam_search_tree").facts
    tree, model = facts["tree"], load_pretrained(figures.TRANSLATOR)
    batch = model.source_batch([figures.SENTENCE])
    expected = model.generate(batch["src"], batch["src_pad_mask"], strategy="beam", beam_size=3, n_best=3)[0]
    ranked = sorted((node.rank, i) for i, node in enumerate(tree.nodes) if node.rank is not None)
    assert [tree.path(i) for _, i in ranked] == [h.tokens.tolist() for h in expected]
    assert [round(tree.nodes[i].log_prob, 4) for _, i in ranked] == [round(h.log_prob, 4) for h in expected]
    for step in range(1, tree.steps + 1):  # the search keeps at most n = 3 beams per step
        assert sum(n.fate in ("kept", "stopped") for n in tree.nodes if n.step == step) <= 3
    assert facts["n_best"] == [
        t for t, _ in model.translate_n_best([figures.SENTENCE], beam_size=3, n_best=3, strategy="beam")[0]
    ]


def test_a_char_models_beam_tree_is_its_beam_search_and_draws_up_to_a_step():
    model = load_pretrained(figures.CHAR_RNN)
    tree, token_text = beam_tree_of_text(model, "ROMEO:", beam_size=2, max_len=6)
    expected = model.generate_texts("ROMEO:", 6, strategy="beam", beam_size=2, n_best=2)
    ranked = sorted((node.rank, i) for i, node in enumerate(tree.nodes) if node.rank is not None)
    assert ["".join(token_text(t) for t in tree.path(i)) for _, i in ranked] == [text for text, _ in expected]
    figure = beam_tree_figure(tree, token_text, up_to_step=3)
    assert figure.axes[0].get_xlim()[1] < 4  # three steps drawn, not six
    with pytest.raises(ValueError, match="one input"):
        beam_tree(model, prompt=torch.zeros(2, 1, dtype=torch.long))


def test_masked_self_attention_weights_are_zero_on_the_future_and_on_padding(shared_data, made):
    facts = made("masked_attention").facts
    assert facts["above_diagonal"] == 0 and facts["on_padding"] == 0 and facts["rows_sum"] < 1e-5


def test_teacher_forced_and_free_running_predictions_agree_until_they_part(shared_data, made):
    facts = made("teacher_forcing").facts
    parted = facts["parted"]
    assert 0 < parted < len(facts["reference"])
    assert facts["free"][:parted] == facts["reference"][:parted]
    # the same prefix in, the same token out: one decode call of the whole prefix equals step-by-step greedy
    assert facts["forced"][: parted + 1] == facts["free"][: parted + 1]
    assert facts["free"][parted] != facts["reference"][parted]
