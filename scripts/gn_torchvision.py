"""What scripts/import-torchvision and scripts/export-torchvision share: gemmnet's view of a
network (`gemmnet summary --json`), reading torchvision weights (a torch.save'd state_dict or a
safetensors file), the mapping between torchvision's tensor names and gemmnet's, and atomic
writes. Needs Debian's python3-torch only for .pth files (docs/interop.md).

The mapping follows the config, not a per-model table. gemmnet's tensors are taken in network
order (the order a checkpoint lists them: layer by layer, weight before bn.weight, bn.bias,
bn.running_mean, bn.running_var); torchvision's in module order, num_batches_tracked dropped. A
[convolutional] with batch_normalize=1 is torchvision's Conv2d followed by its BatchNorm2d,
[connected] is Linear, so both lists line up one to one when the config mirrors the model.
Each pair must agree in kind (a batch-norm tensor to a bn.* parameter, a weight to a weight, a
bias to a bias) and in shape; the first pair that does not is the error, named as
`layer3.1.conv2.weight: [256,256,3,3] in the file, layer 21 wants [512,256,3,3]`.

A .pth state_dict keeps module order. A safetensors file does not (writers sort the names), so
the order is rebuilt from the names: the module tree is walked depth first, children with
numbers as numbers, convN before bnN before other names, and among siblings the first whose
first tensor has the shape gemmnet wants next (so `features` comes before `classifier`)."""
import json
import os
import re
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


class Refused(Exception):
    """A refusal with its message; the scripts print it and exit 1."""


def shape_str(shape):
    return "[" + ",".join(str(int(d)) for d in shape) + "]"


def gemmnet_binary(given=None):
    for cand in (given, os.environ.get("GEMMNET"), os.path.join(HERE, "..", "build", "gemmnet")):
        if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return "gemmnet"


def gemmnet_view(config, sets, binary):
    """gemmnet's planned net for CONFIG: the parsed `summary --json`."""
    cmd = [binary, "summary", config, "--json", "--batch", "1"]
    for s in sets or []:
        cmd += ["--set", s]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    except OSError as e:
        raise Refused("cannot run %s: %s (build gemmnet, or give --gemmnet PATH)" % (binary, e))
    if p.returncode != 0:
        raise Refused(p.stderr.decode("utf-8", "replace").strip() or
                      "%s summary failed (exit %d)" % (binary, p.returncode))
    return json.loads(p.stdout.decode("utf-8"))


def gemmnet_params(view):
    """[(layer index, layer type, name, param, shape)] in checkpoint order."""
    out = []
    for layer in view["layers"]:
        for p in layer["params"]:
            out.append((layer["index"], layer["type"], p["name"], p["param"], list(p["shape"])))
    return out


# ---- reading torchvision weights ----

ST_DTYPES = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16",
             "I64": "int64", "I32": "int32"}


def is_safetensors(path):
    with open(path, "rb") as f:
        head = f.read(9)
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and n < (1 << 32)


def read_safetensors(path):
    """name -> torch tensor, from a safetensors file (parsed here: a JSON header and raw
    little-endian data)."""
    import torch
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise Refused("%s: safetensors header length %d exceeds the file" % (path, n))
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Refused("%s: safetensors header is not JSON: %s" % (path, e))
    header.pop("__metadata__", None)
    data = blob[8 + n:]
    out = {}
    for name, t in header.items():
        dt = ST_DTYPES.get(t.get("dtype"))
        if dt is None:
            raise Refused("%s: dtype %s is not supported" % (name, t.get("dtype")))
        b, e = t["data_offsets"]
        if not (0 <= b <= e <= len(data)):
            raise Refused("%s: data_offsets %s outside the data" % (name, [b, e]))
        x = torch.frombuffer(bytearray(data[b:e]), dtype=getattr(torch, dt)) if e > b else \
            torch.empty(0, dtype=getattr(torch, dt))
        count = 1
        for d in t["shape"]:
            count *= d
        if x.numel() != count:
            raise Refused("%s: shape %s does not fit data_offsets %s" % (name, t["shape"],
                                                                       [b, e]))
        out[name] = x.reshape(t["shape"])
    return out


def read_torchvision(path):
    """(ordered [(name, tensor)], ordered): a .pth state_dict keeps its module order; a
    safetensors file has none (ordered False)."""
    if not os.path.isfile(path):
        raise Refused("%s: no such file" % path)
    if is_safetensors(path):
        return list(read_safetensors(path).items()), False
    import torch
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for files that are not its own
        raise Refused("%s: not a torch.save'd state_dict or a safetensors file: %s" % (path, e))
    # Training scripts often wrap it: {"model": state_dict} or {"state_dict": ...}.
    for key in ("state_dict", "model"):
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise Refused("%s: not a state_dict (a dict of tensor names to tensors)" % path)
    return list(sd.items()), True


# ---- ordering safetensors names ----

def _child_key(name):
    """Default order of sibling modules: numbers as numbers, convN before bnN, then names."""
    if name.isdigit():
        return (0, int(name), 0, "")
    m = re.match(r"^(.*?)(\d+)$", name)
    num = int(m.group(2)) if m else 1 << 30
    stem = m.group(1) if m else name
    rank = 0 if stem.startswith("conv") else 1 if stem.startswith("bn") else 2
    return (1, num, rank, stem)


LEAF_ORDER = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3,
              "num_batches_tracked": 4}


def order_by_names(items, wanted_shapes):
    """items [(name, tensor)] without order -> module order (see the module docstring).
    wanted_shapes: gemmnet's shapes in order, to choose among siblings."""
    tree = {}
    for name, t in items:
        node = tree
        parts = name.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise Refused("%s: a tensor and a module of the same name" % name)
        node[parts[-1]] = (name, t)

    def leaves(node):
        """Default-order leaves of a subtree (for a child's first tensor)."""
        out = []
        for k in sorted(node, key=lambda k: (LEAF_ORDER.get(k, 9), _child_key(k))
                        if not isinstance(node[k], dict) else (10,) + _child_key(k)):
            v = node[k]
            out.extend(leaves(v) if isinstance(v, dict) else [v])
        return out

    out = []

    def walk(node):
        tensors = sorted((k for k in node if not isinstance(node[k], dict)),
                         key=lambda k: (LEAF_ORDER.get(k, 9), k))
        for k in tensors:
            out.append(node[k])
        pending = sorted((k for k in node if isinstance(node[k], dict)), key=_child_key)
        while pending:
            pos = len([1 for n, _ in out if not n.endswith("num_batches_tracked")])
            want = wanted_shapes[pos] if pos < len(wanted_shapes) else None
            pick = pending[0]
            for k in pending:
                first = [x for x in leaves(node[k]) if not x[0].endswith("num_batches_tracked")]
                if first and want is not None and list(first[0][1].shape) == want:
                    pick = k
                    break
            pending.remove(pick)
            walk(node[pick])

    walk(tree)
    return out


# ---- the mapping ----

def module_kinds(items):
    """module prefix -> 'bn' if it has running statistics, else 'other'."""
    kinds = {}
    for name, _ in items:
        mod, _, leaf = name.rpartition(".")
        if leaf in ("running_mean", "running_var"):
            kinds[mod] = "bn"
        else:
            kinds.setdefault(mod, "other")
    return kinds


def describe(param):
    return ("a batch-norm " if param.startswith("bn.") else "a ") + param.split(".")[-1]


def match(torch_items, gparams):
    """Pairs [(gemmnet name, torch name)] in order, num_batches_tracked dropped; Refused at the
    first mismatch."""
    kinds = module_kinds(torch_items)
    items = [(n, t) for n, t in torch_items if not n.endswith("num_batches_tracked")]
    pairs = []
    for i in range(max(len(items), len(gparams))):
        if i >= len(items):
            layer, ltype, gname, param, shape = gparams[i]
            raise Refused("the file ends after %d tensors; layer %d (%s) wants %s %s next" % (
                len(items), layer, ltype, gname, shape_str(shape)))
        name, t = items[i]
        if i >= len(gparams):
            raise Refused("%s: %s in the file, but the config's %d tensors are all taken" % (
                name, shape_str(t.shape), len(gparams)))
        layer, ltype, gname, param, shape = gparams[i]
        mod, _, leaf = name.rpartition(".")
        is_bn = kinds.get(mod) == "bn"
        g_leaf = param.split(".")[-1]
        if leaf != g_leaf or is_bn != param.startswith("bn."):
            raise Refused("%s: %s %s in the file, layer %d (%s) wants %s %s (%s)" % (
                name, ("a batch-norm " if is_bn else "a ") + leaf, shape_str(t.shape), layer,
                ltype, describe(param), shape_str(shape), gname))
        if list(t.shape) != shape:
            raise Refused("%s: %s in the file, layer %d wants %s" % (
                name, shape_str(t.shape), layer, shape_str(shape)))
        if not t.is_floating_point():
            raise Refused("%s: dtype %s, a floating-point tensor is needed" % (name, t.dtype))
        pairs.append((gname, name))
    return pairs


# ---- writing ----

def write_atomic(path, write):
    """write(f) into path.tmp.<pid> in the same directory, flush, fsync, rename over path,
    fsync the directory; on failure the temporary file is removed and path is untouched."""
    d = os.path.dirname(os.path.abspath(path))
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def load_checkpoint_module():
    sys.path.insert(0, HERE)
    import load_checkpoint
    return load_checkpoint
