#!/usr/bin/python3
"""The checks of test_onnx.sh on one exported model: onnx.checker with full shape inference
(python3-onnx), the inferred output shape, and ONNX Runtime's output against gemmnet's.

usage: onnx_check.py MODEL DIMS GEMMNET.f32 ORT.f32 [TOL]
Compares every output value (every probability of both images): max |ort - gemmnet| <= TOL
(absolute, default 1e-5), and fails a saturated output (a largest probability above 0.999).
Prints the figures; exit 1 on failure."""
import sys

import numpy as np
import onnx


def main():
    model_path, dims_path, ours_path, ort_path = sys.argv[1:5]
    tol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-5
    n, c, h, w, d = (int(v) for v in open(dims_path).read().split())
    # the checker reads the file itself (no copy of a large model through Python), with
    # strict shape inference; the inferred output shape comes from a copy without the float
    # data, which shape inference does not read
    onnx.checker.check_model(model_path, full_check=True)
    model = onnx.load(model_path)
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and t.raw_data:
            t.ClearField("raw_data")
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    opset = {o.domain: o.version for o in model.opset_import}.get("", 0)

    def shape(v):
        return [x.dim_param or x.dim_value for x in v.type.tensor_type.shape.dim]

    ins, outs = list(inferred.graph.input), list(inferred.graph.output)
    problems = []
    if opset < 13:
        problems.append(f"opset {opset} < 13")
    if [v.name for v in ins] != ["input"] or shape(ins[0]) != ["N", c, h, w]:
        got = [(v.name, shape(v)) for v in ins]
        problems.append(f"input {got}, expected input [N,{c},{h},{w}]")
    if [v.name for v in outs] != ["output"] or shape(outs[0]) != ["N", d]:
        problems.append(f"output {[(v.name, shape(v)) for v in outs]}, expected output [N,{d}]")
    ops = sorted({node.op_type for node in model.graph.node})
    if "Dropout" in ops:
        problems.append("a Dropout node is left in the graph")
    ours = np.fromfile(ours_path, dtype="<f4")
    theirs = np.fromfile(ort_path, dtype="<f4")
    if ours.size != n * d or theirs.size != n * d:
        problems.append(f"{ours.size} values from gemmnet, {theirs.size} from ONNX Runtime, "
                        f"expected {n * d}")
        diff = float("inf")
    else:
        diff = float(np.max(np.abs(ours.astype(np.float64) - theirs.astype(np.float64))))
        if not np.all(np.isfinite(ours)) or not diff <= tol:
            problems.append(f"max |ort - gemmnet| = {diff:.3g} > {tol:g}")
    top = float(np.max(ours)) if ours.size else float("nan")
    if top > 0.999:
        # a saturated softmax (one class 1, the rest 0) would match whatever came before it
        problems.append(f"the largest output is {top:.4f}: a saturated softmax proves little")
    print(f"  {len(model.graph.node)} nodes ({' '.join(ops)}), largest output {top:.3g}, "
          f"max |ort - gemmnet| = {diff:.3g}")
    for p in problems:
        print(f"  FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
