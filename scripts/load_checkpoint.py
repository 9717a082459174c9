#!/usr/bin/python3
"""Reads a gemmnet checkpoint (a safetensors file) with nothing but struct and json, verifies its
CRC-32 checksums, and prints the metadata and the tensors with their shapes.

    scripts/load_checkpoint.py run/ckpt.safetensors            # list, verify
    scripts/load_checkpoint.py --torch run/ckpt.safetensors    # also build torch tensors

As a module: load(path) -> (tensors, metadata), where tensors maps each name to a numpy array
(or, with torch=True, a torch tensor) in PyTorch's shapes. The weights under "layers.<i>.<name>"
load into a PyTorch model whose state_dict uses the same names.
"""
import argparse
import json
import struct
import sys
import zlib

DTYPES = {"F64": ("d", 8), "F32": ("f", 4), "F16": ("e", 2), "I64": ("q", 8),
          "I32": ("i", 4), "I16": ("h", 2), "I8": ("b", 1), "U8": ("B", 1), "BOOL": ("?", 1)}


def read_raw(path):
    """Header dict, metadata dict and the data section's bytes, with the layout checked."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("not a safetensors file: shorter than 8 bytes")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError("header length %d exceeds the file (%d bytes)" % (n, len(blob)))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data = blob[8 + n:]
    pos = 0
    for name, t in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        b, e = t["data_offsets"]
        if b != pos:
            raise ValueError("%s: data_offsets %s leave a gap or overlap" % (name, (b, e)))
        size = DTYPES[t["dtype"]][1] if t["dtype"] in DTYPES else None
        count = 1
        for d in t["shape"]:
            count *= d
        if size is not None and e - b != count * size:
            raise ValueError("%s: shape %s does not fit data_offsets %s" % (name, t["shape"],
                                                                           (b, e)))
        pos = e
    if pos != len(data):
        raise ValueError("the data section has %d bytes, the tensors cover %d" % (len(data), pos))
    return header, meta, data


def header_checksum(header, meta):
    """gemmnet's checksum.header: tensors by name (name, dtype, shape), then metadata by key,
    each string as b"<length>:<bytes>"."""
    crc = 0

    def field(s):
        nonlocal crc
        b = s.encode("utf-8")
        crc = zlib.crc32(b"%d:" % len(b), crc)
        crc = zlib.crc32(b, crc)

    field(str(len(header)))
    for name in sorted(header, key=lambda s: s.encode("utf-8")):
        field(name)
        field(header[name]["dtype"])
        field("[" + ",".join(str(d) for d in header[name]["shape"]) + "]")
    keys = sorted((k for k in meta if k != "checksum.header"), key=lambda s: s.encode("utf-8"))
    field(str(len(keys)))
    for k in keys:
        field(k)
        field(meta[k])
    return crc


def verify(header, meta, data):
    """Raises ValueError on a checksum mismatch; returns the number of checksums verified."""
    ours = meta.get("format") == "gemmnet-checkpoint" or any(k.startswith("checksum.")
                                                             for k in meta)
    n = 0
    if ours:
        want = meta.get("checksum.header")
        if want != "crc32:%08x" % header_checksum(header, meta):
            raise ValueError("header checksum mismatch")
        n += 1
    for name, t in header.items():
        if not ours:
            break
        want = meta.get("checksum." + name)
        b, e = t["data_offsets"]
        got = "crc32:%08x" % zlib.crc32(data[b:e])
        if want != got:
            raise ValueError("%s: checksum mismatch (%s, recorded %s)" % (name, got, want))
        n += 1
    return n


def load(path, torch=False):
    header, meta, data = read_raw(path)
    verify(header, meta, data)
    tensors = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        if torch:
            import torch as T
            dt = {"F32": T.float32, "F64": T.float64, "F16": T.float16, "I64": T.int64,
                  "I32": T.int32, "U8": T.uint8}[t["dtype"]]
            # bytearray: a writable copy, so torch does not warn about read-only memory
            x = T.frombuffer(bytearray(data[b:e]), dtype=dt) if e > b else T.empty(0, dtype=dt)
            tensors[name] = x.reshape(t["shape"])
        else:
            import numpy as np
            x = np.frombuffer(data, dtype="<" + DTYPES[t["dtype"]][0], count=(e - b) //
                              DTYPES[t["dtype"]][1], offset=b)
            tensors[name] = x.reshape(t["shape"])
    return tensors, meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path")
    ap.add_argument("--torch", action="store_true", help="build torch tensors (torch.frombuffer)")
    ap.add_argument("--values", type=int, default=0, help="print the first N values of each")
    args = ap.parse_args()
    try:
        header, meta, data = read_raw(args.path)
        n = verify(header, meta, data)
    except (ValueError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as e:
        print("%s: refused: %s" % (args.path, e), file=sys.stderr)
        return 1
    print("%s: %d tensors, %d bytes of data, %d checksums verified" % (args.path, len(header),
                                                                       len(data), n))
    for k, v in meta.items():
        if not k.startswith("checksum."):
            v = v.replace("\n", "\\n")
            print("  meta %s = %s" % (k, v if len(v) < 70 else v[:67] + "..."))
    tensors = None
    if args.torch or args.values:
        tensors, _ = load(args.path, torch=args.torch)
    for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        line = "  %-44s %-4s %s" % (name, t["dtype"], list(t["shape"]))
        if tensors is not None:
            x = tensors[name]
            line += "  %s" % type(x).__module__.split(".")[0]
            if args.values:
                line += " " + " ".join("%.6g" % v for v in x.reshape(-1)[:args.values].tolist())
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
