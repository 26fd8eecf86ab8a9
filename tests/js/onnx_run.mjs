// Run an ONNX model in onnxruntime-node.
// usage: node onnx_run.mjs MODEL.onnx INPUT.json OUT.json
//   INPUT: {name, shape, data} (float32).  Writes {shape, data} of output 0.
import ort from 'onnxruntime-node';
import { readFileSync, writeFileSync } from 'node:fs';

const [model, input, out] = process.argv.slice(2);
const x = JSON.parse(readFileSync(input, 'utf8'));
const session = await ort.InferenceSession.create(model);
const feeds = { [x.name]: new ort.Tensor('float32', Float32Array.from(x.data), x.shape) };
const res = await session.run(feeds);
const y = res[session.outputNames[0]];
writeFileSync(out, JSON.stringify({ shape: y.dims, data: Array.from(y.data) }));
