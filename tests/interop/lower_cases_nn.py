"""Cases of the nn-family ops (pooling with indices, sampling, distances, histograms, segment
reductions, 0-d reductions) for ``test_lower_ops.py``'s op-by-op comparison with ATen.

Each case is ``(op name, case id, args, kwargs)``, built once at import from a seeded generator.
"""

from __future__ import annotations

import torch
import torch.nn.modules.linear_cross_entropy

_g = torch.Generator().manual_seed(22)


def _r(*shape):
    return torch.randn(*shape, generator=_g)


def _ties(*shape):
    """Few distinct values, with NaNs: the choice between equal maxima is ATen's, exactly."""
    x = torch.randint(0, 3, shape, generator=_g).float()
    x.view(-1)[3] = x.view(-1)[7] = float("nan")
    return x


NN_CASES: list[tuple[str, str, tuple, dict]] = []


def case(name: str, *args, id: str = "", **kwargs) -> None:
    NN_CASES.append((name, id, args, kwargs))


# reductions of a 0-d tensor: dim 0 / -1 name the scalar itself
_s = torch.tensor(1.5)
case("aten.sum.dim_IntList", _s, [0], True, id="0-d")
case("aten.mean.dim", _s, [-1], id="0-d")
case("aten.amax.default", _s, [0], id="0-d")
case("aten.amin.default", _s, [-1], True, id="0-d")
case("aten.argmax.default", _s, 0, id="0-d")
case("aten.argmin.default", _s, -1, True, id="0-d")
case("aten.max.dim", _s, 0, id="0-d")
case("aten.min.dim", _s, 0, True, id="0-d")
case("aten.prod.dim_int", _s, 0, id="0-d")
case("aten.var.correction", _s, [0], correction=0, id="0-d")
case("aten.any.dim", torch.tensor(True), 0, id="0-d")
case("aten.all.dims", torch.tensor(False), [0], id="0-d")
case("aten.linalg_vector_norm.default", _s, 3, [0], id="0-d")
# pooling with indices (ties and NaNs: ATen keeps the first maximum and the last NaN)
_x = _ties(2, 3, 9, 10)
case("aten.max_pool2d_with_indices.default", _x, [3, 2], [2, 1], [1, 1], [2, 1], True, id="ties")
case("aten.max_pool1d_with_indices.default", _x[0], [3], [2], [1])
case("aten.max_pool3d_with_indices.default", _x, [2, 3, 2], [1, 2, 2], [1, 1, 0], [1, 1, 2], True)
case("aten.max_pool3d_with_indices.default", _r(1, 2, 5, 6, 7), [3, 3, 3], id="default-stride")
case("aten.adaptive_max_pool1d.default", _x[0], [4])
case("aten.adaptive_max_pool2d.default", _x, [4, 3])
case("aten.adaptive_max_pool2d.default", _r(2, 3, 8, 8), [8, 5], id="up")
case("aten.adaptive_max_pool3d.default", _x, [2, 4, 3])
case("aten.fractional_max_pool2d.default", _x, [2, 3], [5, 6], torch.rand(2, 3, 2, generator=_g))
case(
    "aten.fractional_max_pool3d.default",
    _ties(2, 2, 6, 7, 8),
    [2, 3, 2],
    [4, 3, 5],
    torch.rand(2, 2, 3, generator=_g),
)
_y, _i = torch.ops.aten.max_pool2d_with_indices(_x, [3, 3], [2, 2], [1, 1])
case("aten.max_pool2d_with_indices_backward.default", _r(*_y.shape), _x, [3, 3], [2, 2], [1, 1],
     [1, 1], False, _i)  # fmt: skip
_x3 = _r(1, 2, 5, 6, 7)
_y, _i = torch.ops.aten.max_pool3d_with_indices(_x3, [3, 3, 3], [2, 2, 2], [1, 1, 1])
case("aten.max_pool3d_with_indices_backward.default", _r(*_y.shape), _x3, [3, 3, 3], [2, 2, 2],
     [1, 1, 1], [1, 1, 1], False, _i)  # fmt: skip
case("aten.avg_pool3d.default", _r(2, 2, 6, 7, 8), [2, 2, 2], [1, 2, 1], [1, 0, 1], True, False)
case("aten.avg_pool3d.default", _r(1, 2, 5, 5, 5), [3, 3, 3], [2, 2, 2], [1, 1, 1], True, True, 5,
     id="divisor")  # fmt: skip
case("aten._adaptive_avg_pool3d.default", _r(2, 2, 6, 7, 8), [4, 5, 3])
case("aten._adaptive_avg_pool3d.default", _r(2, 2, 6, 4, 8), [3, 2, 4], id="divisible")
case("aten.adaptive_avg_pool3d.default", _r(1, 2, 5, 5, 5), [1, 1, 1])
# grid sampling: every interpolation x padding mode, points inside and outside the input
_img, _grid = _r(2, 3, 5, 7), torch.rand(2, 4, 6, 2, generator=_g) * 2.6 - 1.3
for _mode in (0, 1, 2):
    for _pad in (0, 1, 2):
        for _ac in (False, True):
            _id = f"mode{_mode}-pad{_pad}-ac{int(_ac)}"
            case("aten.grid_sampler_2d.default", _img, _grid, _mode, _pad, _ac, id=_id)
_vol, _grid3 = _r(2, 3, 4, 5, 6), torch.rand(2, 3, 4, 2, 3, generator=_g) * 2.6 - 1.3
for _mode in (0, 1):
    for _pad in (0, 1, 2):
        case("aten.grid_sampler_3d.default", _vol, _grid3, _mode, _pad, _pad == 1,
             id=f"mode{_mode}-pad{_pad}")  # fmt: skip
# distances
case("aten._cdist_forward.default", _r(3, 5, 4), _r(3, 6, 4), 2.0, None)
case("aten._cdist_forward.default", _r(2, 1, 30, 4), _r(3, 28, 4), 2.0, None, id="mm-broadcast")
for _p in (0.0, 1.0, 3.5, float("inf")):
    case("aten._cdist_forward.default", _r(5, 4), _r(7, 4), _p, 2, id=f"p{_p}")
    case("aten._pdist_forward.default", _r(6, 5), _p, id=f"p{_p}")
case("aten._pdist_forward.default", _r(6, 5))
case("aten.dist.default", _r(4, 5), _r(5), 3)
case("aten.dist.default", _r(4, 5), _r(4, 5), id="p2")
# histograms
_h = _r(50) * 3
case("aten.histc.default", _h, 7, -2, 2)
case("aten.histc.default", _h, 10, id="data-range")
case("aten.histc.default", torch.tensor(2.0), 4, id="0-d")
case("aten.histogram.bin_ct", _h, 9, range=[-1.0, 2.0], density=True)
case("aten.histogram.bin_ct", _h, 5, weight=torch.rand(50, generator=_g), id="weight")
case("aten.histogram.bins_tensor", _h, torch.tensor([-3.0, -1, 0, 0.5, 4]))
_hd = _r(30, 3)
case("aten._histogramdd_bin_edges.default", _hd, [3, 4, 5])
case("aten._histogramdd_from_bin_cts.default", _hd, [3, 4, 5], density=True)
case("aten._histogramdd_from_bin_cts.default", _hd, [2, 2, 3], range=[-1.0, 1, -2, 2, 0, 1],
     id="range")  # fmt: skip
case("aten._histogramdd_from_bin_tensors.default", _hd[:, :2],
     [torch.tensor([-2.0, 0, 1]), torch.tensor([-1.0, 0, 0.5, 3])])  # fmt: skip
# segment reductions
_seg = torch.tensor([1.0, 2, 3, 4, 5, float("nan")])
for _red in ("sum", "mean", "max", "min", "prod"):
    case("aten.segment_reduce.default", _seg, _red, lengths=torch.tensor([2, 0, 3, 1]),
         id=_red)  # fmt: skip
    case("aten.segment_reduce.default", _seg, _red, lengths=torch.tensor([2, 0, 3, 1]),
         initial=7.0, id=f"{_red}-initial")  # fmt: skip
case("aten.segment_reduce.default", _r(2, 6, 3), "max",
     offsets=torch.tensor([[0, 2, 6], [0, 3, 6]]), axis=1, id="offsets-axis1")  # fmt: skip
_w, _idx, _off = _r(6, 3), torch.tensor([1, 2, 5, 5, 0, 3]), torch.tensor([0, 0, 2, 6])
for _m in (0, 1, 2):
    for _pad in (-1, 5):
        for _last in (False, True):
            case("aten._embedding_bag_forward_only.default", _w, _idx, _off, False, _m, False,
                 None, _last, _pad, id=f"mode{_m}-pad{_pad}-last{int(_last)}")  # fmt: skip
case("aten._embedding_bag.default", _w, _idx, _off, False, 0, False, _r(6), False, 5)
# nn layers and activations
case("aten._trilinear.default", _r(4, 3), _r(6, 3, 5), _r(4, 5), [1, 3], [0], [1, 2], [2, 3])
case("aten.empty_permuted.default", [2, 3], [1, 0])
case("prims.convert_element_type.default", _r(3, 4), torch.bfloat16)
# a low-precision dtype= accumulates in float32, as torch does, not in the low precision
case("aten.sum.dim_IntList", (_r(4096) * 3).half(), [0], dtype=torch.float16, id="f16-dtype")
case("aten.mean.dim", (_r(4096) * 3).bfloat16(), [0], dtype=torch.bfloat16, id="bf16-dtype")
# F.linear_cross_entropy with chunking options: torch's custom op, one piece here
_lce = "torch_nn._linear_cross_entropy_batch_chunked.default"
_flags = (2, "compact", torch.float32, True, False, False, False)
_lx, _lw, _lt = _r(8, 3), _r(5, 3), torch.tensor([0, 4, -100, 2, 1, 1, 3, 0])
case(_lce, _lx, _lw, _lt, None, None, "mean", -100, 0.0, *_flags)
case(_lce, _lx, _lw, _lt, _r(5), torch.rand(5, generator=_g), "mean", -100, 0.0, *_flags,
     id="bias-weight")  # fmt: skip
case(_lce, _lx, _lw, torch.softmax(_r(8, 5), -1), None, _r(5).abs(), "sum", -100, 0.0, *_flags,
     id="probabilities")  # fmt: skip
case("torch_nn._linear_cross_entropy_batch_chunked_no_reduction.default", _lx, _lw, _lt, _r(5),
     torch.rand(5, generator=_g), -100, 2, "compact", torch.float32)  # fmt: skip
