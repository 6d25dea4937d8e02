#!/usr/bin/python3
"""Makes the state-dict loader fixtures in tests/fixtures/pth (tests/test_pth.c).

Run with Debian's python (torch 1.13, numpy):  /usr/bin/python3 tests/gen_pth_fixtures.py
Output is deterministic: fixed values, fixed zip timestamps.

Valid fixtures get a sidecar NAME.expect listing, in the order the loader must
return them, one tensor per line:  name<TAB>d0,d1,...<TAB>hex float32 bits ...
(an empty shape field is a 0-d tensor).  Malformed fixtures are listed in
test_pth.c with the status and detail they must produce.
"""
import collections
import io
import json
import os
import pickle
import pickletools
import struct
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "pth")
DATE = (2020, 1, 1, 0, 0, 0)


def vals(n, seed):
    """n deterministic float32 values with varied exponents and signs."""
    x = np.arange(n, dtype=np.float64)
    v = np.sin(x * 1.7 + seed) * (2.0 ** ((x % 7) - 3)) + 0.001 * seed
    return torch.tensor(v, dtype=torch.float32)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def expect(name, tensors):
    """tensors: list of (key, tensor) in the order the loader returns them."""
    lines = []
    for k, t in tensors:
        f = t.detach().to(torch.float32).contiguous().numpy()
        bits = f.reshape(-1).view(np.uint32)
        shape = ",".join(str(d) for d in t.shape)
        lines.append("%s\t%s\t%s" % (k, shape, " ".join("%08x" % b for b in bits)))
    with open(os.path.join(OUT, name + ".expect"), "w") as f:
        f.write("\n".join(lines) + "\n")


def zip_bytes(entries, method=zipfile.ZIP_STORED):
    """A zip of (name, bytes) with fixed timestamps."""
    bio = io.BytesIO()
    with zipfile.ZipFile(bio, "w") as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, date_time=DATE)
            zi.compress_type = method
            z.writestr(zi, data)
    return bio.getvalue()


def torch_save(obj, name, **kw):
    """torch.save to bytes. The zip's folder is the stem of the file name."""
    path = os.path.join(OUT, name)
    torch.save(obj, path, **kw)
    with open(path, "rb") as f:
        return f.read()


def rezip(data, prefix, method):
    """Copies a torch zip under another folder name and compression."""
    src = zipfile.ZipFile(io.BytesIO(data))
    ents = []
    for zi in src.infolist():
        rest = zi.filename.split("/", 1)[1]
        ents.append((prefix + "/" + rest, src.read(zi)))
    return zip_bytes(ents, method)


# ---- crafted pickles -------------------------------------------------------

class Storage:
    """Stands for a storage in a crafted pickle (see CraftPickler)."""

    def __init__(self, stype, key, numel, location="cpu"):
        self.stype, self.key, self.numel, self.location = stype, key, numel, location


class Tensor:
    """Pickles as torch._utils._rebuild_tensor_v2(storage, off, size, stride, ...)."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False,
                     collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class CraftPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", obj.stype, obj.key, obj.location, obj.numel)
        return None


def craft_pkl(obj):
    bio = io.BytesIO()
    CraftPickler(bio, protocol=2).dump(obj)
    return bio.getvalue()


def legacy_stable_keys(data):
    """The legacy format names storages by memory address (and stores them
    sorted by that name); renames them "0", "1", ... in order of first use
    and rewrites the storage list and records to match, so the output is
    reproducible."""
    f = io.BytesIO(data)
    for _ in range(3):
        pickle.load(f)
    main_start = f.tell()
    esize = {}

    class Scan(pickle.Unpickler):
        def find_class(self, module, name):
            if name in ("_rebuild_tensor_v2", "OrderedDict"):
                return lambda *a: collections.OrderedDict()
            return getattr(torch, name)

        def persistent_load(self, pid):
            esize.setdefault(pid[2], pid[1]().element_size())
            return None

    Scan(f).load()
    main_end = f.tell()
    keys = pickle.load(f)
    records = {}
    for k in keys:
        n = struct.unpack("<q", f.read(8))[0]
        records[k] = struct.pack("<q", n) + f.read(n * esize[k])
    assert f.read() == b""
    order = list(esize)  # first use
    main = data[main_start:main_end]
    for i, k in enumerate(order):
        old_b = b"X" + struct.pack("<I", len(k)) + k.encode()
        new_b = b"X" + struct.pack("<I", len(str(i))) + str(i).encode()
        main = main.replace(old_b, new_b)
    tail = pickle.dumps([str(i) for i in range(len(order))], protocol=2)
    tail += b"".join(records[k] for k in order)
    return data[:main_start] + main + tail


def f32_bytes(t):
    return t.to(torch.float32).numpy().astype("<f4").tobytes()


# ---- safetensors -----------------------------------------------------------

def safetensors(tensors, metadata=None, raw_header=None, pad_to=8):
    """tensors: list of (name, dtype, shape, bytes). Offsets follow list order."""
    hdr = {}
    if metadata is not None:
        hdr["__metadata__"] = metadata
    data = b""
    for name, dtype, shape, b in tensors:
        hdr[name] = {"dtype": dtype, "shape": list(shape),
                     "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = raw_header if raw_header is not None else json.dumps(hdr).encode()
    h += b" " * ((-len(h)) % pad_to)
    return struct.pack("<Q", len(h)) + h + data


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    torch.manual_seed(0)

    # -- zip .pth with params_ema and params: params_ema must win.
    ema = collections.OrderedDict(
        [("conv.weight", vals(2 * 3 * 3 * 3, 1).reshape(2, 3, 3, 3)),
         ("conv.bias", vals(2, 2)),
         ("body.0.alpha", vals(4, 3))])
    params = collections.OrderedDict((k, v + 100.0) for k, v in ema.items())
    ema_pth = torch_save({"params_ema": ema, "params": params, "epoch": 7,
                          "note": "x"}, "ema.pth")
    expect("ema.pth", list(ema.items()))

    # The same file with deflate and another folder name.
    write("deflate.pth", rezip(ema_pth, "my model", zipfile.ZIP_DEFLATED))
    expect("deflate.pth", list(ema.items()))

    # -- 'params' only, as nn.Parameters (_rebuild_parameter).
    p = collections.OrderedDict(
        [("a", torch.nn.Parameter(vals(6, 4).reshape(2, 3))),
         ("b", torch.nn.Parameter(vals(1, 5).reshape(())))])
    torch_save({"params": p, "iter": 1000}, "params.pth")
    expect("params.pth", list(p.items()))

    # -- plain state dict: half, bfloat16, views sharing storage, non-tensors.
    base = vals(24, 6)
    half = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.1035156e-05,
                         5.9604645e-08, 3.0e-7, float("inf"), float("-inf"),
                         float("nan"), 0.333], dtype=torch.float16)
    bf = torch.tensor([1.0, -3.140625, 1.0e-38, 3.0e38, float("inf"), 0.1],
                      dtype=torch.bfloat16)
    mat = base.reshape(4, 6)
    sd = collections.OrderedDict()
    sd["f32"] = base[:6].clone().reshape(2, 3)
    sd["half"] = half
    sd["bf16"] = bf
    sd["transposed"] = mat.t()             # shares base's storage, strides (1, 6)
    sd["slice"] = mat[1:3, 2:5]            # offset 8, strides (6, 1)
    sd["step"] = base[3::5]                # offset 3, stride 5
    sd["scalar"] = base[7]                 # 0-d, offset 7
    sd["empty"] = torch.zeros(0, 3)
    sd["half_t"] = half[:12].reshape(3, 4).t()
    sd._metadata = collections.OrderedDict([("", {"version": 1})])
    top = collections.OrderedDict([("step_count", 3)])
    top.update(sd)
    top["name"] = "plain"
    top["cfg"] = {"lr": 0.5, "betas": (0.9, 0.99), "flags": [True, False, None]}
    torch_save(top, "plain.pth")
    expect("plain.pth", list(sd.items()))

    # -- legacy (pre-1.6) format with the same content.
    write("legacy.pth", legacy_stable_keys(
        torch_save(top, "legacy.pth", _use_new_zipfile_serialization=False)))
    expect("legacy.pth", list(sd.items()))

    # -- safetensors written by hand.
    st_f32 = vals(6, 7).reshape(2, 3)
    st_h = half
    st_b = bf
    st = [("a.weight", "F32", (2, 3), f32_bytes(st_f32)),
          ("h", "F16", (12,), st_h.numpy().astype("<f2").tobytes()),
          ("b", "BF16", (3, 2), st_b.view(torch.int16).numpy().astype("<i2").tobytes()),
          ("s", "F32", (), f32_bytes(torch.tensor(2.5))),
          ("z", "F16", (0, 4), b"")]
    write("valid.safetensors", safetensors(st, metadata={"format": "pt", "k\u00e9y": "v\"q"}))
    expect("valid.safetensors", [("a.weight", st_f32), ("h", st_h),
                                  ("b", st_b.reshape(3, 2)), ("s", torch.tensor(2.5)),
                                  ("z", torch.zeros(0, 4))])
    # data_offsets past the end of the data area.
    write("st_offsets.safetensors", safetensors([], raw_header=json.dumps(
        {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()) +
        f32_bytes(torch.tensor([1.0, 2.0])))
    # Two tensors sharing bytes.
    two = f32_bytes(torch.tensor([1.0, 2.0, 3.0]))
    write("st_overlap.safetensors", safetensors([], raw_header=json.dumps(
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()) + two)
    # Byte count != numel * dtype size.
    write("st_size.safetensors", safetensors([], raw_header=json.dumps(
        {"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}).encode()) + two)
    write("st_dtype.safetensors", safetensors([("n", "I64", (2,), struct.pack("<2q", 1, 2))]))
    write("st_dup.safetensors", safetensors([], raw_header=(
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},'
        b' "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}')) + two[:8])
    write("st_json.safetensors", safetensors([], raw_header=(
        b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]')) + two[:4])
    # Header length larger than the file.
    write("st_hlen.safetensors", struct.pack("<Q", 1 << 40) + b"{}")

    # -- malformed .pth
    write("truncated.pth", ema_pth[: len(ema_pth) // 2])
    # A pickle asking for os.system (hand-written bytes: GLOBAL, a tuple, REDUCE).
    evil = (b"\x80\x02cos\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.")
    write("os_system.pth", zip_bytes([("archive/data.pkl", evil),
                                      ("archive/version", b"3\n")]))
    # Protocol 4, STACK_GLOBAL builtins.eval inside a dict value.
    evil4 = (b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01w\x94"
             b"\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94\x8c\x031+1\x94\x85\x94R\x94s.")
    write("eval.pth", zip_bytes([("archive/data.pkl", evil4)]))
    # A tensor whose shape needs more elements than its storage holds.
    s0 = Storage(torch.FloatStorage, "0", 4)
    big = craft_pkl(collections.OrderedDict([("w", Tensor(s0, 1, (2, 2), (2, 1)))]))
    write("small_storage.pth", zip_bytes([("archive/data.pkl", big),
                                          ("archive/data/0", f32_bytes(vals(4, 8)))]))
    # Storage record promises 4 floats, data/0 holds 3.
    ok = craft_pkl(collections.OrderedDict([("w", Tensor(s0, 0, (4,), (1,)))]))
    write("short_data.pth", zip_bytes([("archive/data.pkl", ok),
                                       ("archive/data/0", f32_bytes(vals(3, 8)))]))
    # The same pickle with correct data (the positive control of the two above).
    write("crafted.pth", zip_bytes([("archive/data.pkl", ok),
                                    ("archive/data/0", f32_bytes(vals(4, 8)))]))
    expect("crafted.pth", [("w", vals(4, 8))])
    # An int64 tensor: LongStorage is not a supported storage.
    torch_save({"n": torch.arange(3)}, "long.pth")
    # No tensors in the chosen dict.
    torch_save({"params": {"a": 1, "b": "x"}, "other": torch.zeros(2)}, "notensor.pth")
    # Saturated EOCD entry count: needs ZIP64, which is refused.
    z = bytearray(ema_pth)
    eocd = z.rfind(b"PK\x05\x06")
    z[eocd + 8:eocd + 12] = b"\xff\xff\xff\xff"
    write("zip64.pth", bytes(z))

    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %d files, %d bytes" % (len(os.listdir(OUT)), total))


if __name__ == "__main__":
    main()
