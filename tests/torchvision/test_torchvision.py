#!/usr/bin/python3
"""torchvision in and out, with PyTorch as the oracle (docs/interop.md). For resnet18, resnet34,
resnet50 and mobilenet_v2: torchvision's model with random weights and non-trivial batch-norm
statistics -> torch.save(state_dict) -> scripts/import-torchvision -> `gemmnet predict --csv`:
its evaluation-mode probabilities on three 64x64 photos at the net's own size
(net.width/height=64, data.eval_resize=64: no resampling) must equal PyTorch's within 1e-5,
with the same top-1;
scripts/export-torchvision must give back the state_dict bit for bit (names, order, dtypes,
values, num_batches_tracked), and load strictly. Also: a safetensors file with torchvision's
names (sorted, as writers store them) imports to the same tensors, and a .pth of another
architecture is refused with the first mismatch named, exit 1, the output untouched.

    test_torchvision.py      (GEMMNET and GN_SOURCE_ROOT from the environment, as meson sets them)
"""
import csv
import io
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
from PIL import Image

ROOT = os.environ.get("GN_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
SIZE = 64
MODELS = ["resnet18", "resnet34", "resnet50", "mobilenet_v2"]
IMAGES = [os.path.join(ROOT, "tests", "torchvision", "data", n)
          for n in ("dog-64.jpg", "eagle-64.jpg", "giraffe-64.jpg")]
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]  # the configs' [data] mean, std
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL " + msg, file=sys.stderr)
    return cond


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


_scripts = {}


def run_script(cmd):
    """cmd = [script, args...] run in this process (its main() with sys.argv set), so torch is
    not imported again for every call; (exit code, stdout, stderr) as run() gives. The
    scripts' own entry (shebang, exit status) is exercised by run() calls below."""
    import contextlib
    import importlib.machinery
    import importlib.util
    path = cmd[0]
    if path not in _scripts:
        name = os.path.basename(path).replace("-", "_")
        loader = importlib.machinery.SourceFileLoader(name, path)
        spec = importlib.util.spec_from_loader(name, loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        _scripts[path] = mod
    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = list(cmd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = _scripts[path].main()
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
    return rc, out.getvalue(), err.getvalue()


def random_model(name, seed, x):
    """torchvision's model, random weights, batch norm with random affine parameters and
    running statistics taken from the batch x and its mirror image, then shifted and scaled at
    random."""
    torch.manual_seed(seed)
    m = getattr(torchvision.models, name)()
    bns = [x for x in m.modules() if isinstance(x, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        for bn in bns:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0.0, 0.2)
            bn.momentum = None  # a cumulative average: after one batch, that batch's statistics
        m.train()
        m(torch.cat([x, x.flip(3), torch.randn(10, 3, SIZE, SIZE)]))
        for bn in bns:
            bn.running_mean.add_(0.1 * torch.randn_like(bn.running_mean))
            bn.running_var.mul_(torch.empty_like(bn.running_var).uniform_(0.7, 1.4))
            bn.momentum = 0.1
        # Logits of a moderate spread (std 2): neither a uniform nor a one-hot distribution,
        # so the comparison of probabilities sees the whole net.
        m.eval()
        head = [x for x in m.modules() if isinstance(x, torch.nn.Linear)][-1]
        head.weight.mul_(2.0 / float(m(x).std()))
    return m


def torch_input():
    """The images as PyTorch sees them: RGB / 255, normalized, NCHW."""
    xs = []
    for path in IMAGES:
        a = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        check(a.shape == (SIZE, SIZE, 3), "%s: %s, the test wants %dx%d" % (path, a.shape, SIZE,
                                                                           SIZE))
        a = (a - np.array(MEAN, dtype=np.float32)) / np.array(STD, dtype=np.float32)
        xs.append(torch.from_numpy(a.transpose(2, 0, 1).copy()))
    return torch.stack(xs)


def torch_probs(model, x):
    with torch.no_grad():
        return torch.softmax(model(x).double(), dim=1).numpy()


def gemmnet_probs(config, weights, gemmnet, csv_path):
    """gemmnet predict --csv: (probabilities per image, top-1 class per image)."""
    rc, out, err = run([gemmnet, "predict", config, "--weights", weights, "--set",
                        "net.width=%d" % SIZE, "--set", "net.height=%d" % SIZE, "--set",
                        "data.eval_resize=%d" % SIZE, "--csv", csv_path] + IMAGES)
    if not check(rc == 0, "%s: predict failed (%d): %s" % (config, rc, err.strip())):
        return None, None
    with open(csv_path, newline="") as f:
        rows = list(csv.reader(f))
    # header: path, class, probability, then the class names (indices: the checkpoint has none)
    check(rows and rows[0][:3] == ["path", "class", "probability"] and
          rows[0][3:] == [str(j) for j in range(1000)],
          "%s: CSV header %s" % (config, rows[0][:4] if rows else None))
    body = rows[1:]
    check([r[0] for r in body] == IMAGES, "%s: CSV rows for %s" % (config, [r[0] for r in body]))
    check(len(body) == len(IMAGES), "%s: %d rows for %d images" % (config, len(body),
                                                                   len(IMAGES)))
    top = [int(r[1]) if r[1].isdigit() else r[1] for r in body]
    return np.array([[float(v) for v in r[3:]] for r in body]), top


def state_dict_equal(a, b):
    """None if a and b are bit-identical state_dicts (order, dtype, shape, bytes), else why."""
    if list(a) != list(b):
        return "names or order differ"
    for k in a:
        x, y = a[k], b[k]
        if x.dtype != y.dtype or x.shape != y.shape:
            return "%s: %s %s against %s %s" % (k, x.dtype, list(x.shape), y.dtype, list(y.shape))
        if x.contiguous().numpy().tobytes() != y.contiguous().numpy().tobytes():
            return "%s: values differ" % k
    return None


def save_safetensors(sd, path):
    """A safetensors file as writers store one: names sorted, no module order."""
    dt = {torch.float32: "F32", torch.int64: "I64"}
    header, blobs, pos = {}, [], 0
    for name in sorted(sd):
        b = sd[name].contiguous().numpy().tobytes()
        header[name] = {"dtype": dt[sd[name].dtype], "shape": list(sd[name].shape),
                        "data_offsets": [pos, pos + len(b)]}
        blobs.append(b)
        pos += len(b)
    text = json.dumps(header, sort_keys=True).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    if len(sys.argv) != 1 or not os.environ.get("GEMMNET"):
        print(__doc__, file=sys.stderr)
        return 2
    gemmnet = os.environ["GEMMNET"]
    imp = os.path.join(ROOT, "scripts", "import-torchvision")
    exp = os.path.join(ROOT, "scripts", "export-torchvision")
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import load_checkpoint
    tmp = tempfile.mkdtemp(prefix="gn-torchvision-")
    x = torch_input()
    for i, name in enumerate(MODELS):
        config = os.path.join(ROOT, "configs", name + ".cfg")
        model = random_model(name, 100 + i, x)
        sd = model.state_dict()
        pth, ckpt, back = (os.path.join(tmp, name + s) for s in (".pth", ".safetensors",
                                                                 ".back.pth"))
        torch.save(sd, pth)
        # the first import as a command (exit status and all), the others in this process
        rc, out, err = (run if i == 0 else run_script)([imp, pth, ckpt, "--config", config])
        if not check(rc == 0, "%s: import-torchvision failed (%d): %s" % (name, rc, err.strip())):
            continue
        want = torch_probs(model, x)
        got, top = gemmnet_probs(config, ckpt, gemmnet, os.path.join(tmp, name + ".csv"))
        if got is not None and check(got.shape == want.shape, "%s: %s probabilities, torch %s" % (
                name, got.shape, want.shape)):
            diff = float(np.abs(got - want).max())
            rel = float((np.abs(got - want) / want).max())
            print("%-13s max |p - p_torch| = %.2e (relative %.2e), top-1 %s, torch %s, "
                  "top-1 p %.4f" % (name, diff, rel, top, list(want.argmax(1)),
                                    float(want.max())))
            check(diff <= 1e-5, "%s: probabilities differ from PyTorch's by %.3e" % (name, diff))
            check(top == list(want.argmax(1)), "%s: top-1 %s, PyTorch %s" % (
                name, top, list(want.argmax(1))))
        rc, out, err = (run if i == 0 else run_script)([exp, ckpt, back, "--config", config])
        if check(rc == 0, "%s: export-torchvision failed (%d): %s" % (name, rc, err.strip())):
            again = torch.load(back)
            why = state_dict_equal(sd, again)
            check(why is None, "%s: the round trip is not bit-identical: %s" % (name, why))
            model.load_state_dict(again, strict=True)
        if name == "resnet18":
            # The same weights as a safetensors file with torchvision's names.
            st, st_ckpt = os.path.join(tmp, "tv.safetensors"), os.path.join(tmp, "st.gn")
            save_safetensors(sd, st)
            rc, out, err = run_script([imp, st, st_ckpt, "--config", config])
            if check(rc == 0, "safetensors import failed (%d): %s" % (rc, err.strip())):
                a, _ = load_checkpoint.load(ckpt)
                b, _ = load_checkpoint.load(st_ckpt)
                check(list(a) == list(b) and all(np.array_equal(a[k], b[k]) for k in a),
                      "a safetensors file imports to other tensors than the .pth")
            # Another architecture: refused with the first mismatch, nothing written, an
            # existing output left as it was.
            out_path = os.path.join(tmp, "refused.safetensors")
            with open(out_path, "wb") as f:
                f.write(b"old contents")
            rc, out, err = run([imp, pth, out_path, "--config",
                                os.path.join(ROOT, "configs", "resnet34.cfg")])
            want_msg = "layer2.0.conv1.weight: [128,64,3,3] in the file, layer 8 wants " \
                       "[64,64,3,3]"
            check(rc == 1, "resnet18 into resnet34: exit %d, want 1" % rc)
            check(want_msg in err, "resnet18 into resnet34: message %r, want %r" % (
                err.strip(), want_msg))
            with open(out_path, "rb") as f:
                check(f.read() == b"old contents", "a refused import changed its output")
            left = [f for f in os.listdir(tmp) if ".tmp." in f]
            check(not left, "temporary files left: %s" % left)
    if failures:
        print("%d failures (files kept in %s)" % (len(failures), tmp), file=sys.stderr)
        return 1
    subprocess.run(["rm", "-rf", tmp])
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
