// ONNX Runtime's side of the ONNX check (test_onnx.sh): runs MODEL on the float32 input in
// INPUT (shape from the first four numbers of DIMS: N C H W) and writes the float32 values of
// the model's output "output" to OUT, with its shape on stdout.
// usage: node onnx_run.js MODEL INPUT DIMS OUT; ORT_DIR: where scripts/onnxruntime.sh installed
// onnxruntime-node (it holds node_modules/onnxruntime-node).
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [model, input, dimsFile, out] = process.argv.slice(2);
  if (!out) throw new Error('usage: node onnx_run.js MODEL INPUT DIMS OUT');
  const dir = process.env.ORT_DIR;
  if (!dir) throw new Error('ORT_DIR is not set');
  const ort = require(path.join(dir, 'node_modules', 'onnxruntime-node'));
  const dims = fs.readFileSync(dimsFile, 'utf8').trim().split(/\s+/).slice(0, 4).map(Number);
  const buf = fs.readFileSync(input);
  const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  if (x.length !== dims.reduce((a, b) => a * b, 1))
    throw new Error(`${input}: ${x.length} floats, the shape ${dims} needs another count`);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 2, interOpNumThreads: 1, executionProviders: ['cpu'],
  });
  if (session.inputNames.join() !== 'input' || session.outputNames.join() !== 'output')
    throw new Error(`inputs ${session.inputNames}, outputs ${session.outputNames}: ` +
                    'expected one input "input" and one output "output"');
  const res = await session.run({ input: new ort.Tensor('float32', x, dims) });
  const y = res.output;
  fs.writeFileSync(out, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
  console.log(y.dims.join(' '));
}

main().catch((e) => {
  console.error(`onnx_run.js: ${e.message || e}`);
  process.exit(1);
});
