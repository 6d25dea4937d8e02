#!/usr/bin/python3
"""PyTorch side of bench/nn.sh: model definitions, model-file generation,
FLOP counts, the SGEMM peak and a timing server.

Subcommands (all output on stdout, one line per answer):
  gen DIR            write DIR/rrdb-x4plus.pth and DIR/rrdb-anime6b.pth:
                     RRDBNet (basicsr key names, under 'params_ema') with
                     seeded random weights; skips files already there.
  flops MODEL W H    FLOPs of one forward pass of MODEL on a WxH input
                     (2 * multiply-adds of every convolution, see conv_flops).
  sgemm T            float32 2048x2048 @ 2048x2048 with numpy (OpenBLAS) at
                     T threads: prints GFLOP/s, median of 5 after a warm-up.
                     Set OPENBLAS_NUM_THREADS=T before starting Python.
  serve T DIR        times torch inference at T threads. Reads lines
                     "MODEL W H" on stdin, answers each with the seconds of
                     one timed run. The first request for a (MODEL, W, H)
                     builds the model and runs it once untimed (warm-up).

MODEL is one of x4plus, anime6b (random weights, from DIR), animevideov3
(real weights, $UPRES_SHARED/models/pytorch/realesr-animevideov3.pth) and
general-x4v3 (same architecture as the real model, seeded random weights:
its real weights exist only as ncnn; the speed of a dense convolution does
not depend on its weights).

What is timed: model(x) on a float32 NCHW tensor under torch.inference_mode(),
nothing else (no u8 <-> float conversion, no clamping). upres's time (from
`upres bench`) includes its conversion of the 8-bit image to float and back,
which is a few milliseconds at these sizes, so the comparison favours torch
slightly.
"""
import os
import statistics
import sys
import time

SHARED = os.environ.get("UPRES_SHARED", "../shared")

# name: (architecture, parameters)
MODELS = {
    "x4plus": ("rrdb", dict(num_feat=64, num_block=23, num_grow_ch=32, scale=4)),
    "anime6b": ("rrdb", dict(num_feat=64, num_block=6, num_grow_ch=32, scale=4)),
    "animevideov3": ("srvgg", dict(num_feat=64, num_conv=16, scale=4)),
    "general-x4v3": ("srvgg", dict(num_feat=64, num_conv=32, scale=4)),
}


def conv_flops(h, w, cin, cout, k=3):
    """FLOPs of a stride-1 'same' k x k convolution on an h x w output:
    2 * h * w * cin * cout * k * k (one multiply and one add per MAC; bias and
    activation are not counted)."""
    return 2 * h * w * cin * cout * k * k


def model_flops(name, w, h):
    """FLOPs of one forward pass of MODELS[name] on a w x h input, counting
    every convolution, including those after the nearest-neighbour upsampling
    (RRDBNet) and the last one before the pixel shuffle (SRVGG). Pixel
    shuffle, interpolation, residual adds and activations are not counted."""
    arch, p = MODELS[name]
    nf = p["num_feat"]
    if arch == "rrdb":
        gc = p["num_grow_ch"]
        rdb = sum(conv_flops(h, w, nf + i * gc, gc) for i in range(4))
        rdb += conv_flops(h, w, nf + 4 * gc, nf)
        f = conv_flops(h, w, 3, nf)                      # conv_first
        f += p["num_block"] * 3 * rdb                    # RRDB trunk
        f += conv_flops(h, w, nf, nf)                    # conv_body
        f += conv_flops(2 * h, 2 * w, nf, nf)            # conv_up1 (after 2x nearest)
        f += conv_flops(4 * h, 4 * w, nf, nf)            # conv_up2
        f += conv_flops(4 * h, 4 * w, nf, nf)            # conv_hr
        f += conv_flops(4 * h, 4 * w, nf, 3)             # conv_last
        return f
    s = p["scale"]
    f = conv_flops(h, w, 3, nf)
    f += p["num_conv"] * conv_flops(h, w, nf, nf)
    f += conv_flops(h, w, nf, 3 * s * s)
    return f


def build(name, cache_dir):
    """Returns MODELS[name] as an eval-mode float32 torch module with its
    weights loaded (see the module docstring for where they come from)."""
    import torch
    arch, p = MODELS[name]
    if arch == "rrdb":
        m = RRDBNet(**p)
        sd = torch.load(os.path.join(cache_dir, "rrdb-%s.pth" % name), map_location="cpu")
        m.load_state_dict(sd["params_ema"])
    else:
        m = SRVGGNetCompact(**p)
        if name == "animevideov3":
            sd = torch.load(os.path.join(SHARED, "models/pytorch/realesr-animevideov3.pth"),
                            map_location="cpu")
            m.load_state_dict(sd["params"])
        else:
            torch.manual_seed(3)
            with torch.no_grad():
                for t in m.parameters():
                    t.uniform_(-0.05, 0.05)
    return m.eval().float()


def _modules():
    """RRDBNet and SRVGGNetCompact: the reference modules of
    tests/gen_arch_fixtures.py (basicsr / Real-ESRGAN parameter names),
    taking MODELS' parameters. Imported lazily so that `flops` and `sgemm`
    work without torch."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import gen_arch_fixtures as ref

    def rrdb(num_feat, num_block, num_grow_ch, scale):
        return ref.RRDBNet(3, 3, scale=scale, num_feat=num_feat, num_block=num_block,
                           num_grow_ch=num_grow_ch)

    def srvgg(num_feat, num_conv, scale):
        return ref.SRVGGNetCompact(3, 3, num_feat=num_feat, num_conv=num_conv, upscale=scale,
                                   act_type="prelu")

    return rrdb, srvgg


def gen(cache_dir):
    """Writes the random-weight RRDBNet files (see the module docstring)."""
    import torch
    os.makedirs(cache_dir, exist_ok=True)
    for seed, name in enumerate(("x4plus", "anime6b")):
        path = os.path.join(cache_dir, "rrdb-%s.pth" % name)
        if os.path.exists(path):
            continue
        torch.manual_seed(seed + 1)
        m = RRDBNet(**MODELS[name][1])
        # Small weights (as basicsr's default_init_weights scale 0.1) keep the
        # 23-block trunk's activations finite; the values do not matter for
        # speed, but NaN/Inf or denormals could.
        with torch.no_grad():
            for t in m.parameters():
                t.mul_(0.1)
        tmp = path + ".tmp"
        torch.save({"params_ema": m.state_dict()}, tmp)
        os.replace(tmp, path)
        print(path)


def sgemm(threads):
    """Prints the float32 matmul rate of numpy at the threads fixed by
    OPENBLAS_NUM_THREADS (GFLOP/s, median of 5 after one warm-up)."""
    import numpy as np
    n = 2048
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        rates.append(2.0 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    print("%.1f" % statistics.median(rates))


def serve(threads, cache_dir):
    """Answers "MODEL W H" lines with the seconds of one timed forward pass."""
    import torch
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    cache = {}
    for line in sys.stdin:
        name, w, h = line.split()
        w, h = int(w), int(h)
        key = (name, w, h)
        with torch.inference_mode():
            if key not in cache:
                cache.clear()  # one model resident at a time
                torch.manual_seed(0)
                x = torch.rand(1, 3, h, w, dtype=torch.float32)
                m = build(name, cache_dir)
                m(x)  # warm-up: allocator, oneDNN primitive creation
                cache[key] = (m, x)
            m, x = cache[key]
            t0 = time.perf_counter()
            y = m(x)
            dt = time.perf_counter() - t0
        assert y.shape == (1, 3, 4 * h, 4 * w)
        print("%.6f" % dt, flush=True)


def main(argv):
    global RRDBNet, SRVGGNetCompact
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "flops" and len(argv) == 5:
        print(model_flops(argv[2], int(argv[3]), int(argv[4])))
    elif cmd == "sgemm" and len(argv) == 3:
        sgemm(int(argv[2]))
    elif cmd == "gen" and len(argv) == 3:
        RRDBNet, SRVGGNetCompact = _modules()
        gen(argv[2])
    elif cmd == "serve" and len(argv) == 4:
        RRDBNet, SRVGGNetCompact = _modules()
        serve(int(argv[2]), argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
