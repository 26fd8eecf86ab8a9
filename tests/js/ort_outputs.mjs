// Run an ONNX model that takes no inputs in onnxruntime-node and print its
// outputs as JSON {name: {type, dims, data}} (int64 as strings).
// Usage: node ort_outputs.mjs MODEL.onnx
import ort from 'onnxruntime-node';
const session = await ort.InferenceSession.create(process.argv[2]);
const out = await session.run({});
const res = {};
for (const [name, t] of Object.entries(out))
  res[name] = { type: t.type, dims: t.dims, data: Array.from(t.data, (v) => (typeof v === 'bigint' ? v.toString() : v)) };
console.log(JSON.stringify(res));
