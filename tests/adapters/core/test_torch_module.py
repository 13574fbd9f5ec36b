"""forward(params, x) is pure, deterministic, thread-safe, graph-free by default and
differentiable on request (torch.func.grad / vjp against plain torch autograd)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import timm
import torch

import adapters
import specs

TINY = {
    "img_size": 32,
    "patch_size": 8,
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "num_classes": 0,
}
SPECS = {
    "vit": specs.ModuleSpec(
        class_path="timm.models.vision_transformer.VisionTransformer", init_args=TINY
    ),
    # BatchNorm buffers: eval mode must hold, running stats must never move
    "convbn": specs.ModuleSpec(
        class_path="torchvision.ops.Conv2dNormActivation",
        init_args={"in_channels": 3, "out_channels": 8, "stride": 4},
    ),
}


def plain_model(name: str) -> torch.nn.Module:
    if name == "vit":
        return timm.models.vision_transformer.VisionTransformer(**TINY)
    import torchvision

    return torchvision.ops.Conv2dNormActivation(in_channels=3, out_channels=8, stride=4)


@pytest.fixture(scope="module", params=sorted(SPECS))
def case(request):
    return request.param, adapters.build(SPECS[request.param])


def perturbed(params: dict, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        k: v + 0.05 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v.clone()
        for k, v in params.items()
    }


def x_image(seed: int = 0) -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def snapshot(module: torch.nn.Module) -> dict:
    return {k: (v.data_ptr(), v.clone()) for k, v in module.state_dict(keep_vars=True).items()}


def test_other_params_give_the_matching_output_and_leave_module_alone(case) -> None:
    name, backbone = case
    before = snapshot(backbone.module)
    attrs_before = {k: id(v) for k, v in backbone.module.named_parameters()}
    params = perturbed(dict(backbone.params), seed=1)
    x = x_image()
    plain = plain_model(name)
    plain.load_state_dict(params)
    torch.testing.assert_close(backbone.forward(params, x), plain.eval()(x), rtol=0, atol=1e-6)
    after = snapshot(backbone.module)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    for k, (_, value) in before.items():
        torch.testing.assert_close(after[k][1], value, rtol=0, atol=0)
    assert {k: id(v) for k, v in backbone.module.named_parameters()} == attrs_before
    assert not backbone.module.training
    # and the adapter's own params still give the original output
    plain.load_state_dict(backbone.params)
    torch.testing.assert_close(backbone(x), plain(x), rtol=0, atol=1e-6)


def test_repeated_calls_are_identical(case) -> None:
    _, backbone = case
    x = x_image()
    params = perturbed(dict(backbone.params), seed=2)
    first, again = backbone.forward(params, x), backbone.forward(params, x)
    assert torch.equal(first, again)
    assert torch.equal(backbone(x), backbone(x))


def test_threads_with_different_params_get_their_own_results(case) -> None:
    _, backbone = case
    x = x_image()
    param_sets = [backbone.params] + [perturbed(dict(backbone.params), seed=s) for s in range(3)]
    expected = [backbone.forward(p, x) for p in param_sets]

    def job(i: int) -> torch.Tensor:
        return backbone.forward(param_sets[i % len(param_sets)], x)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(job, range(16)))
    for i, result in enumerate(results):
        assert torch.equal(result, expected[i % len(param_sets)]), i


def test_inference_builds_no_graph(case) -> None:
    _, backbone = case
    x = x_image()
    for out in (backbone(x), backbone.forward(perturbed(dict(backbone.params), 3), x)):
        assert out.grad_fn is None and not out.requires_grad


def test_grad_wrt_params_matches_autograd(case) -> None:
    name, backbone = case
    x = x_image()
    # differentiate with respect to parameters; buffers (BatchNorm statistics) stay fixed
    trainable = dict(backbone.module.named_parameters())
    params = {k: v for k, v in backbone.params.items() if k in trainable}
    frozen = {k: v for k, v in backbone.params.items() if k not in trainable}

    def loss(p):
        return backbone.forward({**p, **frozen}, x).square().sum()

    grads = torch.func.grad(loss)(params)
    plain = plain_model(name)
    plain.load_state_dict(backbone.params)
    plain.eval()
    plain(x).square().sum().backward()
    reference = dict(plain.named_parameters())
    assert set(reference) == set(grads)
    for k, p in reference.items():
        torch.testing.assert_close(grads[k], p.grad, rtol=1e-4, atol=1e-5)


def test_vjp_wrt_input_matches_autograd(case) -> None:
    name, backbone = case
    x = x_image()
    out, vjp = torch.func.vjp(lambda inp: backbone.forward(backbone.params, inp), x)
    cotangent = torch.randn_like(out)
    (grad_x,) = vjp(cotangent)
    plain = plain_model(name)
    plain.load_state_dict(backbone.params)
    leaf = x.clone().requires_grad_(True)
    plain.eval()(leaf).backward(cotangent)
    torch.testing.assert_close(grad_x, leaf.grad, rtol=1e-4, atol=1e-5)


def test_autograd_on_input_through_own_params(case) -> None:
    _, backbone = case
    leaf = x_image().requires_grad_(True)
    out = backbone(leaf)
    assert out.requires_grad
    out.square().sum().backward()  # (a plain sum of a LayerNorm output has zero gradient)
    assert leaf.grad is not None and leaf.grad.abs().sum() > 0
    # the module's own parameters stayed out of the graph
    assert all(p.grad is None for p in backbone.module.parameters())


def test_no_grad_context_is_respected(case) -> None:
    _, backbone = case
    leaf = x_image().requires_grad_(True)
    with torch.no_grad():
        assert backbone(leaf).grad_fn is None


def test_missing_key_is_an_error_not_the_module_tensor(case) -> None:
    _, backbone = case
    params = perturbed(dict(backbone.params), seed=4)
    dropped = list(params)[:5]
    for key in dropped:
        del params[key]
    with pytest.raises(ValueError, match=r"^forward: params do not match") as info:
        backbone.forward(params, x_image())
    message = str(info.value)
    assert "5 missing" in message and dropped[0] in message and "2 more" in message
    assert "unexpected" not in message and "dict(adapter.params)" in message


def test_unexpected_key_is_an_error(case) -> None:
    _, backbone = case
    params = {**backbone.params, "extra.weight": torch.zeros(3)}
    with pytest.raises(ValueError, match=r"1 unexpected \(extra\.weight\)"):
        backbone.forward(params, x_image())


def test_wrong_shape_is_an_error_naming_both_shapes(case) -> None:
    _, backbone = case
    params = dict(backbone.params)
    key = next(k for k, v in params.items() if v.dim() >= 1 and v.is_floating_point())
    good = tuple(params[key].shape)
    params[key] = torch.randn(*good, 2)
    with pytest.raises(ValueError, match=r"1 with the wrong shape") as info:
        backbone.forward(params, x_image())
    assert f"{key} (expected {good}, got {(*good, 2)})" in str(info.value)


def test_non_tensor_value_is_an_error(case) -> None:
    _, backbone = case
    params = dict(backbone.params)
    key = next(iter(params))
    params[key] = [1.0, 2.0]
    with pytest.raises(ValueError, match=rf"{key} \(expected .*, got a list\)"):
        backbone.forward(params, x_image())


def test_another_models_params_are_named_as_such() -> None:
    vit = adapters.build(SPECS["vit"])
    convbn = adapters.build(SPECS["convbn"])
    with pytest.raises(ValueError, match=r"^forward: params look like another model's: only 0 of"):
        vit.forward(convbn.params, x_image())
