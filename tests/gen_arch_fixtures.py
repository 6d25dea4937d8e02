#!/usr/bin/python3
"""Generates tests/fixtures/arch/: tiny random-weight RRDBNet and
SRVGGNetCompact models, a fixed random input per model and PyTorch's output,
for tests/test_arch.c.

Run with Debian's python (python3-torch 1.13 + numpy):
    /usr/bin/python3 tests/gen_arch_fixtures.py
Seeds are fixed and every file is written deterministically (the legacy .pth
gets its storage keys renamed, see save_legacy), so re-running reproduces
the committed files byte for byte.

Files:
  <file>.pth / .safetensors   the model (state dicts wrapped as Real-ESRGAN
                              ships them: {"params_ema": sd} or {"params": sd})
  <case>.in.f32               input, float32 little-endian, [c][h][w]
  <case>.out.f32              torch output, float32 little-endian,
                              [c][h*scale][w*scale]
  cases.txt                   one line per model file:
      file case arch scale channels h w params
  animevideov3.in.f32 / .out.f32
                              input (3x6x7) and torch output of the real
                              ../shared/models/pytorch/realesr-animevideov3.pth
                              (the weights themselves are not copied here)
  bad_shape.safetensors       rrdb_new_gray_x2 with body.0.rdb1.conv2.weight
                              reshaped from [2, 5, 3, 3] to [5, 2, 3, 3]
                              (same element count, wrong input channels)

Models whose input is pixel-unshuffled (RRDBNet x2 / x1) are run the way
Real-ESRGAN runs them: the input is reflect-padded at the bottom/right to a
multiple of the unshuffle factor and the output cropped to h*scale x w*scale
(the x1 cases use an input that is not a multiple of 4).

The module definitions below are the reference ones from basicsr
(basicsr/archs/rrdbnet_arch.py, BSD-3-Clause) and Real-ESRGAN
(realesrgan/archs/srvgg_arch.py, BSD-3-Clause), with RRDBNet generalised to
any number of x2 upsamplings (conv_up1..conv_upU) so the x8 and BSRGAN-style
x2 layouts can be made as well.
"""
import json
import os
import pickle
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures", "arch")


# ---- basicsr RRDBNet -------------------------------------------------------

class ResidualDenseBlock(nn.Module):
    def __init__(self, num_feat=64, num_grow_ch=32):
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        x1 = self.lrelu(self.conv1(x))
        x2 = self.lrelu(self.conv2(torch.cat((x, x1), 1)))
        x3 = self.lrelu(self.conv3(torch.cat((x, x1, x2), 1)))
        x4 = self.lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)))
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, num_feat, num_grow_ch=32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x):
        out = self.rdb1(x)
        out = self.rdb2(out)
        out = self.rdb3(out)
        return out * 0.2 + x


class RRDBNet(nn.Module):
    """basicsr's RRDBNet; num_up (default 2, as basicsr) x2 upsamplings.
    scale 2 / 1 with num_up 2 pixel-unshuffle the input by 2 / 4."""

    def __init__(self, num_in_ch, num_out_ch, scale=4, num_feat=64, num_block=23,
                 num_grow_ch=32, num_up=2):
        super().__init__()
        self.scale = scale
        self.shuffle = (2 ** num_up) // scale
        num_in_ch = num_in_ch * self.shuffle * self.shuffle
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.num_up = num_up
        for i in range(num_up):
            setattr(self, "conv_up%d" % (i + 1), nn.Conv2d(num_feat, num_feat, 3, 1, 1))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x):
        feat = F.pixel_unshuffle(x, self.shuffle) if self.shuffle > 1 else x
        feat = self.conv_first(feat)
        body_feat = self.conv_body(self.body(feat))
        feat = feat + body_feat
        for i in range(self.num_up):
            up = getattr(self, "conv_up%d" % (i + 1))
            feat = self.lrelu(up(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out


# ---- Real-ESRGAN SRVGGNetCompact -------------------------------------------

class SRVGGNetCompact(nn.Module):
    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4,
                 act_type="prelu"):
        super().__init__()
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_conv = num_conv
        self.upscale = upscale
        self.act_type = act_type

        self.body = nn.ModuleList()
        self.body.append(nn.Conv2d(num_in_ch, num_feat, 3, 1, 1))
        if act_type == "relu":
            activation = nn.ReLU(inplace=True)
        elif act_type == "prelu":
            activation = nn.PReLU(num_parameters=num_feat)
        elif act_type == "leakyrelu":
            activation = nn.LeakyReLU(negative_slope=0.1, inplace=True)
        self.body.append(activation)

        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            if act_type == "relu":
                activation = nn.ReLU(inplace=True)
            elif act_type == "prelu":
                activation = nn.PReLU(num_parameters=num_feat)
            elif act_type == "leakyrelu":
                activation = nn.LeakyReLU(negative_slope=0.1, inplace=True)
            self.body.append(activation)

        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x):
        out = x
        for i in range(0, len(self.body)):
            out = self.body[i](out)
        out = self.upsampler(out)
        base = F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        out += base
        return out


# ---- key namings -----------------------------------------------------------

def rename_old(sd, num_block, num_up):
    """basicsr keys -> original ESRGAN keys (model.N...)."""
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "conv_first":
            nk = "model.0." + p[1]
        elif p[0] == "body":
            nk = "model.1.sub.%s.RDB%s.%s.0.%s" % (p[1], p[2][3:], p[3], p[4])
        elif p[0] == "conv_body":
            nk = "model.1.sub.%d.%s" % (num_block, p[1])
        elif p[0].startswith("conv_up"):
            nk = "model.%d.%s" % (3 * int(p[0][7:]), p[1])
        elif p[0] == "conv_hr":
            nk = "model.%d.%s" % (3 * num_up + 2, p[1])
        elif p[0] == "conv_last":
            nk = "model.%d.%s" % (3 * num_up + 4, p[1])
        else:
            raise ValueError(k)
        out[nk] = v
    return out


def rename_trunk(sd):
    """basicsr keys -> ESRGAN-repo / BSRGAN keys (RRDB_trunk, trunk_conv, ...)."""
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "body":
            nk = "RRDB_trunk.%s.RDB%s.%s.%s" % (p[1], p[2][3:], p[3], p[4])
        elif p[0] == "conv_body":
            nk = "trunk_conv." + p[1]
        elif p[0].startswith("conv_up"):
            nk = "upconv%s.%s" % (p[0][7:], p[1])
        elif p[0] == "conv_hr":
            nk = "HRconv." + p[1]
        else:
            nk = k
        out[nk] = v
    return out


# ---- writers ---------------------------------------------------------------

def save_zip(obj, path):
    torch.save(obj, path)


class _LegacyPickleModule:
    """Stands in for the pickle module in torch's legacy writer: renames the
    storages (torch keys them by memory address) to counters in order of first
    use, so the bytes do not depend on where tensors were allocated."""

    __name__ = "pickle"

    def __init__(self):
        self.keys = {}
        self.old_order = None
        self.data_pos = None

    def _rename(self, pid):
        if pid is not None and pid[0] == "storage":
            key = self.keys.setdefault(pid[2], "%06d" % len(self.keys))
            pid = (pid[0], pid[1], key) + tuple(pid[3:])
        return pid

    def Pickler(self, f, protocol):
        mod = self

        class _Wrap:
            def __init__(self):
                object.__setattr__(self, "p", pickle.Pickler(f, protocol=protocol))

            def __setattr__(self, name, value):
                if name == "persistent_id":
                    self.p.persistent_id = lambda obj: mod._rename(value(obj))
                else:
                    setattr(self.p, name, value)

            def dump(self, obj):
                self.p.dump(obj)

        return _Wrap()

    def dump(self, obj, f, protocol):
        if isinstance(obj, list):  # the storage key list, written last
            self.old_order = list(obj)
            obj = sorted(self.keys[k] for k in obj)
            pickle.dump(obj, f, protocol=protocol)
            self.data_pos = f.tell()
        else:
            pickle.dump(obj, f, protocol=protocol)


def save_legacy(obj, path):
    """Legacy (pre-1.6) format, written by torch itself with the storages
    renamed (see _LegacyPickleModule) and their data, which torch writes in
    the order of the old keys, put in the order of the new ones."""
    import io
    mod = _LegacyPickleModule()
    buf = io.BytesIO()
    torch.save(obj, buf, pickle_module=mod, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    pos = mod.data_pos
    blobs = {}
    for k in mod.old_order:
        n = struct.unpack_from("<q", data, pos)[0]
        blobs[mod.keys[k]] = data[pos:pos + 8 + 4 * n]  # float32 storages
        pos += 8 + 4 * n
    assert pos == len(data)
    out = data[:mod.data_pos] + b"".join(blobs[k] for k in sorted(blobs))
    with open(path, "wb") as f:
        f.write(out)
    back = torch.load(path)
    sd = next(iter(obj.values())) if len(obj) == 1 else obj
    bsd = next(iter(back.values())) if len(back) == 1 else back
    assert list(bsd) == list(sd) and all(torch.equal(bsd[k], sd[k]) for k in sd)


def save_safetensors(sd, path):
    """safetensors by hand: u64 LE header length, JSON header, raw F32 bytes."""
    header = {}
    blobs = []
    off = 0
    for k, v in sd.items():
        b = v.detach().contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_f32(path, t):
    with open(path, "wb") as f:
        f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())


def run_padded(net, x, align, scale):
    """Real-ESRGAN's host side: reflect-pad bottom/right to `align`, crop."""
    h, w = x.shape[2], x.shape[3]
    ph, pw = (-h) % align, (-w) % align
    xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
    y = net(xp)
    return y[:, :, : h * scale, : w * scale]


def randomize(net, seed):
    """Random weights and biases (biases too, so no layer is a no-op)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() == 4:
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                bound = (3.0 / fan_in) ** 0.5
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
            elif name.endswith("bias"):
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * 0.1)
            else:  # PReLU slopes
                p.copy_(torch.rand(p.shape, generator=g) * 0.5)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    lines = []
    total = 0

    def emit(fname, case, arch, scale, ch, h, w, params):
        nonlocal total
        total += os.path.getsize(os.path.join(OUT, fname))
        lines.append("%s %s %s %d %d %d %d %d" % (fname, case, arch, scale, ch, h, w, params))

    # name, naming, scale, num_up, in/out ch, num_feat, num_grow_ch, num_block, h, w, wrapper
    rrdb_cases = [
        ("rrdb_new_x4", "new", 4, 2, 3, 3, 2, 2, 6, 6, "params_ema"),
        ("rrdb_new_x2", "new", 2, 2, 3, 3, 2, 1, 8, 10, "params_ema"),
        ("rrdb_new_x1", "new", 1, 2, 3, 2, 2, 1, 10, 7, "params_ema"),
        ("rrdb_old_x4", "old", 4, 2, 3, 4, 2, 1, 6, 6, None),
        ("rrdb_old_x2", "old", 2, 2, 3, 3, 2, 1, 8, 8, None),
        ("rrdb_old_x1", "old", 1, 2, 3, 2, 2, 1, 9, 6, None),
        ("rrdb_old_x8", "old", 8, 3, 3, 2, 2, 1, 3, 4, None),
        ("rrdb_trunk_x4", "trunk", 4, 2, 3, 3, 2, 1, 6, 6, None),
        ("rrdb_trunk_x2", "trunk", 2, 2, 3, 2, 3, 1, 8, 8, None),
        ("rrdb_trunk_x1", "trunk", 1, 2, 3, 2, 2, 1, 12, 8, None),
        ("rrdb_trunk_x2up", "trunk", 2, 1, 3, 3, 2, 1, 8, 8, None),
        ("rrdb_new_gray_x2", "new", 2, 2, 1, 3, 2, 1, 8, 8, "params_ema"),
    ]
    seed = 100
    for (case, naming, scale, num_up, ch, nf, gc, nb, h, w, wrap) in rrdb_cases:
        seed += 1
        torch.manual_seed(seed)
        net = RRDBNet(ch, ch, scale=scale, num_feat=nf, num_block=nb, num_grow_ch=gc,
                      num_up=num_up).eval()
        randomize(net, seed)
        x = torch.rand((1, ch, h, w), generator=torch.Generator().manual_seed(seed + 1000))
        with torch.no_grad():
            y = run_padded(net, x, net.shuffle, scale)
        sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if naming == "old":
            sd = rename_old(sd, nb, num_up)
        elif naming == "trunk":
            sd = rename_trunk(sd)
        obj = {wrap: sd} if wrap else sd
        params = sum(p.numel() for p in net.parameters())
        write_f32(os.path.join(OUT, case + ".in.f32"), x[0])
        write_f32(os.path.join(OUT, case + ".out.f32"), y[0])
        total += 4 * (x.numel() + y.numel())
        save_zip(obj, os.path.join(OUT, case + ".pth"))
        emit(case + ".pth", case, "RRDBNet", scale, ch, h, w, params)
        if case == "rrdb_old_x4":
            save_legacy(obj, os.path.join(OUT, case + "_legacy.pth"))
            emit(case + "_legacy.pth", case, "RRDBNet", scale, ch, h, w, params)
        if case == "rrdb_new_gray_x2":
            save_safetensors(sd, os.path.join(OUT, case + ".safetensors"))
            emit(case + ".safetensors", case, "RRDBNet", scale, ch, h, w, params)
        if case == "rrdb_new_gray_x2":
            bad = dict(sd)
            k = "body.0.rdb1.conv2.weight"
            assert tuple(bad[k].shape) == (2, 5, 3, 3)
            bad[k] = bad[k].reshape(5, 2, 3, 3)
            save_safetensors(bad, os.path.join(OUT, "bad_shape.safetensors"))
            total += os.path.getsize(os.path.join(OUT, "bad_shape.safetensors"))
        print("%-18s out std %.3f  params %d" % (case, float(y.std()), params))

    # name, act, scale, ch, num_feat, num_conv, h, w
    srvgg_cases = [
        ("srvgg_prelu_x4", "prelu", 4, 3, 6, 3, 6, 6),
        ("srvgg_relu_x2", "relu", 2, 3, 8, 3, 8, 9),
        ("srvgg_gray_x3", "prelu", 3, 1, 4, 2, 7, 8),
    ]
    for (case, act, scale, ch, nf, nc, h, w) in srvgg_cases:
        seed += 1
        torch.manual_seed(seed)
        net = SRVGGNetCompact(ch, ch, num_feat=nf, num_conv=nc, upscale=scale,
                              act_type=act).eval()
        randomize(net, seed)
        x = torch.rand((1, ch, h, w), generator=torch.Generator().manual_seed(seed + 1000))
        with torch.no_grad():
            y = net(x)
        sd = {k: v.detach().clone() for k, v in net.state_dict().items()}
        params = sum(p.numel() for p in net.parameters())
        write_f32(os.path.join(OUT, case + ".in.f32"), x[0])
        write_f32(os.path.join(OUT, case + ".out.f32"), y[0])
        total += 4 * (x.numel() + y.numel())
        save_zip({"params": sd}, os.path.join(OUT, case + ".pth"))
        emit(case + ".pth", case, "SRVGGNetCompact", scale, ch, h, w, params)
        if case == "srvgg_prelu_x4":
            save_safetensors(sd, os.path.join(OUT, case + ".safetensors"))
            emit(case + ".safetensors", case, "SRVGGNetCompact", scale, ch, h, w, params)
        print("%-18s out std %.3f  params %d" % (case, float(y.std()), params))

    # The real realesr-animevideov3 (when ../shared has it): torch's output
    # for a small fixed input, so the test can check the full-size network.
    real = os.path.join(HERE, "..", "..", "shared", "models", "pytorch",
                        "realesr-animevideov3.pth")
    if os.path.exists(real):
        net = SRVGGNetCompact(3, 3, num_feat=64, num_conv=16, upscale=4, act_type="prelu")
        net.load_state_dict(torch.load(real, map_location="cpu")["params"])
        net.eval()
        x = torch.rand((1, 3, 6, 7), generator=torch.Generator().manual_seed(4242))
        with torch.no_grad():
            y = net(x)
        write_f32(os.path.join(OUT, "animevideov3.in.f32"), x[0])
        write_f32(os.path.join(OUT, "animevideov3.out.f32"), y[0])
        total += 4 * (x.numel() + y.numel())
    else:
        print("warning: %s not found, animevideov3.*.f32 not rewritten" % real)

    with open(os.path.join(OUT, "cases.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("total %d bytes" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
