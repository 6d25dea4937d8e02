#!/usr/bin/python3
"""Generates tests/fixtures/nn/: PyTorch reference results for the nn engine
tests in tests/test_nn.c.

Run with Debian's python (python3-torch 1.13, CPU):  /usr/bin/python3 tests/gen_nn_fixtures.py
Deterministic (fixed seeds, single thread), so re-running reproduces the
committed files byte for byte.

File format ("NNFX"): magic b"NNFX", uint32 tensor count, then per tensor:
uint32 ndim, ndim uint32 dims, prod(dims) float32 values; all little-endian.
Each case's tensors are, in order: the input [c][h][w], its parameters
(weights, bias, slopes ... as named below), the expected output [c][h][w].
The op parameters themselves (kernel, stride, modes) are written out again
in tests/test_nn.c next to each case, so keep the two lists in step.

Conv-like references are computed in float64 from float32 data (so they are
the exact result to ~1e-15); interpolation runs in float32, because
PyTorch's source-index arithmetic is float32 and the engine reproduces it.
"""
import os
import struct

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "nn")


def save(name, *tensors):
    with open(os.path.join(OUT, name + ".bin"), "wb") as f:
        f.write(b"NNFX" + struct.pack("<I", len(tensors)))
        for t in tensors:
            t = t.detach().to(torch.float32).contiguous()
            f.write(struct.pack("<I", t.dim()))
            f.write(struct.pack("<%dI" % t.dim(), *t.shape))
            f.write(t.numpy().astype("<f4").tobytes())


def rnd(seed, *shape, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g) * scale).to(torch.float32)


def act(y, kind, alpha=0.2):
    if kind == "relu":
        return F.relu(y)
    if kind == "leaky":
        return F.leaky_relu(y, alpha)
    if kind == "sigmoid":
        return torch.sigmoid(y)
    return y


def conv_case(name, seed, cin, h, w, cout, k, stride=(1, 1), dil=(1, 1), pad=(0, 0, 0, 0),
              groups=1, bias=True, kind="none", alpha=0.2):
    """pad = (top, left, bottom, right) zero padding."""
    x = rnd(seed, cin, h, w)
    fan = cin // groups * k[0] * k[1]
    wt = rnd(seed + 1, cout, cin // groups, k[0], k[1], scale=fan ** -0.5)
    b = rnd(seed + 2, cout) if bias else None
    xp = F.pad(x.double()[None], (pad[1], pad[3], pad[0], pad[2]))
    y = F.conv2d(xp, wt.double(), b.double() if bias else None, stride=stride, dilation=dil,
                 groups=groups)[0]
    y = act(y, kind, alpha)
    save(name, x, wt, *( [b] if bias else []), y)


def deconv_case(name, seed, cin, h, w, cout, k, stride=(1, 1), pad=(0, 0), out_pad=(0, 0),
                dil=(1, 1), groups=1, bias=True, kind="none"):
    x = rnd(seed, cin, h, w)
    fan = cin // groups * k[0] * k[1]
    wt = rnd(seed + 1, cin, cout // groups, k[0], k[1], scale=fan ** -0.5)
    b = rnd(seed + 2, cout) if bias else None
    y = F.conv_transpose2d(x.double()[None], wt.double(), b.double() if bias else None,
                           stride=stride, padding=pad, output_padding=out_pad, groups=groups,
                           dilation=dil)[0]
    y = act(y, kind)
    save(name, x, wt, *([b] if bias else []), y)


def interp_case(name, seed, c, h, w, mode, size=None, scale=None, align=None):
    x = rnd(seed, c, h, w)
    kw = {}
    if mode != "nearest":
        kw["align_corners"] = bool(align)
    y = F.interpolate(x[None], size=size, scale_factor=scale, mode=mode, **kw)[0]
    save(name, x, y)


def main():
    os.makedirs(OUT, exist_ok=True)
    # Convolutions.
    conv_case("conv_basic", 10, 3, 10, 12, 8, (3, 3), pad=(1, 1, 1, 1))
    conv_case("conv_geom", 20, 4, 13, 11, 6, (3, 2), stride=(2, 1), dil=(1, 2),
              pad=(1, 2, 0, 1), groups=2, kind="leaky", alpha=0.2)
    conv_case("conv_depthwise", 30, 6, 9, 8, 6, (5, 5), pad=(2, 2, 2, 2), groups=6, kind="relu")
    conv_case("conv_1x1", 40, 5, 7, 9, 7, (1, 1), bias=False, kind="sigmoid")
    conv_case("conv_deep", 50, 24, 10, 11, 13, (3, 3), pad=(1, 1, 1, 1), kind="leaky", alpha=0.1)
    # 660 output pixels: more than one im2col chunk, split inside a row.
    conv_case("conv_wide", 55, 3, 22, 30, 4, (3, 3), pad=(1, 1, 1, 1))
    conv_case("conv_stride3", 60, 3, 17, 16, 5, (4, 4), stride=(3, 3), pad=(0, 1, 2, 0))
    # Transposed convolutions (Real-CUGAN uses k2 s2 and k4 s2 p3).
    deconv_case("deconv_k2s2", 70, 8, 5, 6, 5, (2, 2), stride=(2, 2))
    deconv_case("deconv_k4s2p3", 80, 6, 7, 6, 3, (4, 4), stride=(2, 2), pad=(3, 3), bias=False)
    deconv_case("deconv_geom", 90, 4, 5, 4, 6, (3, 2), stride=(2, 3), pad=(1, 0), out_pad=(1, 2),
                dil=(1, 2), groups=2, kind="relu")
    deconv_case("deconv_wide", 100, 8, 6, 7, 20, (3, 3), stride=(2, 2), pad=(1, 1),
                out_pad=(1, 1))
    # Interpolation.
    interp_case("interp_nearest_s2", 110, 2, 5, 6, "nearest", scale=2.0)
    interp_case("interp_nearest_size", 111, 2, 5, 6, "nearest", size=(7, 13))
    interp_case("interp_nearest_s15", 112, 2, 5, 6, "nearest", scale=1.5)
    interp_case("interp_bilinear_size", 113, 2, 5, 6, "bilinear", size=(9, 4), align=False)
    interp_case("interp_bilinear_ac", 114, 2, 5, 6, "bilinear", size=(11, 8), align=True)
    interp_case("interp_bilinear_s15", 115, 2, 5, 6, "bilinear", scale=1.5, align=False)
    interp_case("interp_bicubic_s2", 116, 2, 5, 6, "bicubic", scale=2.0, align=False)
    interp_case("interp_bicubic_ac", 117, 2, 5, 6, "bicubic", size=(8, 15), align=True)
    interp_case("interp_bicubic_down", 118, 2, 9, 10, "bicubic", size=(4, 3), align=False)
    # Pixel (un)shuffle.
    x = rnd(120, 8, 3, 4)
    save("pixel_shuffle", x, F.pixel_shuffle(x[None], 2)[0])
    x = rnd(121, 2, 6, 9)
    save("pixel_unshuffle", x, F.pixel_unshuffle(x[None], 3)[0])
    # Padding: (top, left, bottom, right) = (1, 2, 3, 0).
    x = rnd(130, 2, 5, 6)
    for mode in ("reflect", "replicate", "constant"):
        kw = {"value": 0.5} if mode == "constant" else {}
        save("pad_" + mode, x, F.pad(x[None], (2, 0, 1, 3), mode=mode, **kw)[0])
    # Activations on one input.
    x = rnd(140, 3, 4, 5, scale=3.0)
    s1 = torch.tensor([0.25])
    sc = torch.tensor([0.1, -0.3, 2.0])
    save("acts", x, s1, sc, torch.cat([F.relu(x), F.leaky_relu(x, 0.05), torch.sigmoid(x),
                                     F.prelu(x[None], s1)[0], F.prelu(x[None], sc)[0]]))
    # Broadcasting binaries, affine, global average pooling:
    # s = gap(x) [4][1][1]; t = gap(conv1x1(x; w, no bias)) [1][1][1]
    # out = concat(x + x, x - s, t * x, x / (x*x*0.5 + 1), s * x, 2x - 1,
    #              x*scale[c] + bias[c], t - x)
    x = rnd(150, 4, 5, 6)
    w = rnd(151, 1, 4, 1, 1)
    sc = rnd(152, 4)
    bi = rnd(153, 4)
    xd = x.double()
    s = xd.mean(dim=(1, 2), keepdim=True)
    t = F.conv2d(xd[None], w.double())[0].mean(dim=(1, 2), keepdim=True)
    out = torch.cat([xd + xd, xd - s, t * xd, xd / (xd * xd * 0.5 + 1), s * xd, 2 * xd - 1,
                     xd * sc.double()[:, None, None] + bi.double()[:, None, None], t - xd])
    save("binary", x, w, sc, bi, s, out)


if __name__ == "__main__":
    main()
