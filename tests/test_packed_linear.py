"""PackedLinear (bf16 decoding copies): the same products as F.linear, bit for bit, whatever the input's shape; a
changed weight is packed again; training and copies still work."""

import copy

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.modules.compute_types import decoding_copy
from zoo.modules.packed_linear import PackedLinear, pack_linears, packing_available

pytestmark = pytest.mark.skipif(not packing_available(), reason="this torch build has no oneDNN packed linear")


def packed(in_features=256, out_features=96, bias=True) -> PackedLinear:
    torch.manual_seed(0)
    return pack_linears(torch.nn.Sequential(torch.nn.Linear(in_features, out_features, bias=bias)))[0].bfloat16()


@pytest.mark.parametrize("shape", [(1, 256), (24, 256), (64, 1, 256), (5, 7, 256), (3, 0, 256)])
@pytest.mark.parametrize("bias", [True, False])
def test_packed_products_equal_f_linear_bit_for_bit(shape, bias):
    layer = packed(bias=bias)
    assert type(layer) is PackedLinear
    x = torch.randn(*shape).bfloat16()
    with torch.inference_mode():
        out = layer(x)
    assert out.shape == (*shape[:-1], 96) and torch.equal(out, F.linear(x, layer.weight, layer.bias))


def test_a_changed_weight_is_packed_again():
    layer, x = packed(), torch.randn(8, 256).bfloat16()
    with torch.no_grad():
        before = layer(x)
        layer.load_state_dict({"weight": 2 * layer.weight, "bias": layer.bias})  # copies in place
        after = layer(x)
    assert torch.equal(after, F.linear(x, layer.weight, layer.bias)) and not torch.equal(before, after)


def test_weights_made_in_inference_mode_are_packed_too():
    with torch.inference_mode():
        layer = packed()  # inference tensors keep no version counter
        x = torch.randn(3, 256).bfloat16()
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


def test_training_copies_and_float32_take_the_ordinary_path():
    layer = packed()
    x = torch.randn(4, 256).bfloat16()
    layer(x).float().sum().backward()  # gradients on: F.linear, so autograd works
    assert layer.weight.grad is not None
    with torch.no_grad():
        layer(x)  # packs
        twin = copy.deepcopy(layer)  # the opaque packed tensor is left behind and remade
        assert torch.equal(twin(x), layer(x))
        assert torch.equal(layer.float()(x.float()), F.linear(x.float(), layer.weight, layer.bias))


def test_a_packed_bf16_translator_translates_as_the_unpacked_one(monkeypatch):
    model = decoding_copy(zoo.load_pretrained("transformer-multi30k-en-fr"), "bfloat16")
    assert all(type(m) is not torch.nn.Linear for m in model.modules())  # every Linear packed
    sentences = ["A man in a blue shirt is riding a bike.", "Two dogs play in the snow.", "People are shopping."]
    packed_translations = model.translate_n_best(sentences, strategy="beam", beam_size=3)
    monkeypatch.setattr(PackedLinear, "forward", torch.nn.Linear.forward)
    assert model.translate_n_best(sentences, strategy="beam", beam_size=3) == packed_translations
