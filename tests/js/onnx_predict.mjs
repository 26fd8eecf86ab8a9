// Run an ONNX model in onnxruntime-node on one float32 input.
// Usage: node onnx_predict.mjs MODEL.onnx INPUT.bin DIMS_JSON OUTPUT.bin
// Writes the first output as little-endian float32 and prints its dims as JSON.
import ort from 'onnxruntime-node';
import fs from 'node:fs';

const [model, input, dims, output] = process.argv.slice(2);
const session = await ort.InferenceSession.create(model);
const ib = fs.readFileSync(input);
const x = new ort.Tensor('float32', new Float32Array(ib.buffer, ib.byteOffset, ib.byteLength / 4), JSON.parse(dims));
const res = await session.run({ [session.inputNames[0]]: x });
const y = res[session.outputNames[0]];
fs.writeFileSync(output, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
console.log(JSON.stringify(y.dims));
