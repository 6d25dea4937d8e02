#!/usr/bin/python3
"""Writes tests/fixtures/ncnn/: a small synthetic ncnn model that uses every
layer form the ncnn loader builds, and the output PyTorch computes for it.

  tiny.param, tiny.bin  the model (fp16 and fp32 weight blocks, odd-sized fp16
                        block to exercise the 4-byte alignment)
  tiny_io.bin           little-endian: int32 c, h, w of the input, the input
                        floats, int32 c, h, w of the output, the output floats

Semantics follow ncnn: Deconvolution weights are stored [out][in][kh][kw],
Crop with starts/ends/axes counts negative ends from the end, the two-input
Crop takes the reference's size at (hoffset, woffset), Interp scales use
PyTorch's align_corners=False coordinates.

Run with Debian's python (torch, numpy): /usr/bin/python3 tests/gen_ncnn_fixtures.py
"""
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ncnn")
rng = np.random.default_rng(20240604)
H, W = 10, 12

bin_parts = []


def fp16_block(a):
    """Stores a as a tagged fp16 block; returns the values as read back."""
    h = a.astype(np.float16)
    raw = h.tobytes()
    raw += b"\0" * ((4 - len(raw) % 4) % 4)
    bin_parts.append(struct.pack("<I", 0x01306B47) + raw)
    return torch.from_numpy(h.astype(np.float32))


def fp32_block(a, tagged):
    a = a.astype(np.float32)
    bin_parts.append((struct.pack("<I", 0) if tagged else b"") + a.tobytes())
    return torch.from_numpy(a)


def rnd(*shape, s=0.3):
    return rng.standard_normal(shape).astype(np.float32) * s


x = torch.from_numpy(rng.random((1, 3, H, W), dtype=np.float32))
lines = []

# c1: 3x3 conv, leaky 0.2, fp16 weights
w = fp16_block(rnd(8, 3, 3, 3)).reshape(8, 3, 3, 3)
b = fp32_block(rnd(8), False)
lines.append("Convolution c1 1 1 d0 a 0=8 1=3 4=1 5=1 6=216 9=2 -23310=1,2.000000e-01")
a = F.leaky_relu(F.conv2d(x, w, b, padding=1), 0.2)

# depthwise 3x3, relu, fp32 weights
w = fp32_block(rnd(8, 1, 3, 3), True).reshape(8, 1, 3, 3)
b = fp32_block(rnd(8), False)
lines.append("ConvolutionDepthWise dw 1 1 a bb 0=8 1=3 4=1 5=1 6=72 7=8 9=1")
bb = F.relu(F.conv2d(a, w, b, padding=1, groups=8))

slope = fp32_block(rnd(8), False)
lines.append("PReLU pr 1 1 bb b2 0=8")
b2 = F.prelu(bb, slope)

lines.append("Split sp2 1 2 b2 e0 e1")
lines.append("Pooling gap 1 1 e0 g 0=1 4=1")
g = b2.mean(dim=(2, 3), keepdim=True)
w = fp16_block(rnd(4, 8)).reshape(4, 8, 1, 1)
b = fp32_block(rnd(4), False)
lines.append("InnerProduct fc1 1 1 g hh 0=4 1=1 2=32 9=1")
hh = F.relu(F.conv2d(g, w, b))
w = fp16_block(rnd(8, 4)).reshape(8, 4, 1, 1)
b = fp32_block(rnd(8), False)
lines.append("InnerProduct fc2 1 1 hh k 0=8 1=1 2=32 9=4")
k = torch.sigmoid(F.conv2d(hh, w, b))
lines.append("BinaryOp mul 2 1 e1 k se 0=2")
se = b2 * k

sc = fp32_block(rnd(8) + 1.0, False)
sb = fp32_block(rnd(8), False)
lines.append("Scale sc 1 1 se sc1 0=8 1=1")
sc1 = se * sc.view(1, 8, 1, 1) + sb.view(1, 8, 1, 1)

# Deconvolution 8 -> 4, k4 s2 p1: ncnn order [out][in][kh][kw]
wn = rnd(4, 8, 4, 4, s=0.2)
w = fp16_block(wn).reshape(4, 8, 4, 4)
b = fp32_block(rnd(4), False)
lines.append("Deconvolution dc 1 1 sc1 up 0=4 1=4 3=2 4=1 5=1 6=512")
up = F.conv_transpose2d(sc1, w.permute(1, 0, 2, 3).contiguous(), b, stride=2, padding=1)

w = fp16_block(rnd(12, 4, 3, 3)).reshape(12, 4, 3, 3)
lines.append("Convolution c2 1 1 up q 0=12 1=3 4=1 5=0 6=432")
q = F.conv2d(up, w, None, padding=1)
lines.append("PixelShuffle ps 1 1 q r 0=2")
r = F.pixel_shuffle(q, 2)

lines.append("Interp up4 1 1 d1 n 0=1 1=4.000000e+00 2=4.000000e+00")
n = F.interpolate(x, scale_factor=4, mode="nearest")
lines.append("Eltwise sum 2 1 r n s 0=1 -23301=2,5.000000e-01,2.0")
s = 0.5 * r + 2.0 * n
lines.append("ReLU lr 1 1 s s2 0=1.000000e-01")
s2 = F.leaky_relu(s, 0.1)
lines.append("Interp bic 1 1 s2 t 0=3 1=0.5 2=0.5")
t = F.interpolate(s2, scale_factor=0.5, mode="bicubic", align_corners=False)
lines.append("Interp bil 1 1 d2 u 0=2 1=2.0 2=2.0")
u = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
lines.append("BinaryOp sub 2 1 t u v 0=1")
v = t - u
lines.append("BinaryOp addc 1 1 v wv 0=0 1=1 2=2.500000e-01")
wv = v + 0.25
lines.append("Sigmoid sg 1 1 wv ws")
ws = torch.sigmoid(wv)
# numpy-style crop: rows [1, end-2), cols [2, end-1)
lines.append("Crop cr 1 1 ws xc -23309=2,1,2 -23310=2,-2,-1 -23311=2,-2,-1")
xc = ws[:, :, 1:-2, 2:-1]
lines.append("Padding pd 1 1 xc y 0=1 1=2 2=2 3=1 4=2")
y = F.pad(xc, (2, 1, 1, 2), mode="reflect")
lines.append("Split sp3 1 2 y y0 y1")
w = fp16_block(rnd(3, 3, 3, 3)).reshape(3, 3, 3, 3)  # 81 values: odd fp16 block
b = fp32_block(rnd(3), False)
lines.append("Convolution c3 1 1 y0 z 0=3 1=3 5=1 6=81")
z = F.conv2d(y, w, b)
lines.append("Split sp4 1 2 z z0 z1")
lines.append("Crop cr2 2 1 y1 z0 o 0=1 1=1")
o = y[:, :, 1:1 + z.shape[2], 1:1 + z.shape[3]]
lines.append("Eltwise prod 2 1 o z1 out 0=0")
out = o * z

layers = ["Input in 0 1 data 0=12 1=10 2=3", "Split sp 1 3 data d0 d1 d2"] + lines
blobs = set()
for ln in layers:
    f = ln.split()
    ni, no = int(f[2]), int(f[3])
    blobs.update(f[4 + ni:4 + ni + no])
text = "7767517\n%d %d\n" % (len(layers), len(blobs))
text += "".join("%-20s %-8s %s\n" % (ln.split(" ", 2)[0], ln.split(" ", 2)[1], ln.split(" ", 2)[2])
                for ln in layers)

os.makedirs(OUT, exist_ok=True)
with open(os.path.join(OUT, "tiny.param"), "w") as fh:
    fh.write(text)
with open(os.path.join(OUT, "tiny.bin"), "wb") as fh:
    fh.write(b"".join(bin_parts))
with open(os.path.join(OUT, "tiny_io.bin"), "wb") as fh:
    xi = x[0].numpy().astype("<f4")
    oo = out[0].detach().numpy().astype("<f4")
    fh.write(struct.pack("<3i", *xi.shape) + xi.tobytes())
    fh.write(struct.pack("<3i", *oo.shape) + oo.tobytes())
print("tiny: in", tuple(x.shape), "out", tuple(out.shape), "bin", sum(map(len, bin_parts)))
