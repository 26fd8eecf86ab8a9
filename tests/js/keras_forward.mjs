// Run a Keras 2 model in tfjs-layers (a real implementation of Keras layers).
// usage: node keras_forward.mjs SPEC.json WEIGHTS.bin OUT.json
//   SPEC: {modelTopology, weightSpecs: [{name, shape, dtype}], input: {shape, data}}
//   (weightSpecs and WEIGHTS in the file's layer order, float32 little-endian).
// Writes {shape, data} of the model's output on the input.
import * as tf from '@tensorflow/tfjs';
import { readFileSync, writeFileSync } from 'node:fs';

const [spec, bin, out] = process.argv.slice(2);
const s = JSON.parse(readFileSync(spec, 'utf8'));
const b = readFileSync(bin);
const weightData = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
const model = await tf.loadLayersModel(tf.io.fromMemory({
  modelTopology: s.modelTopology, weightSpecs: s.weightSpecs, weightData }));
const y = model.predict(tf.tensor(s.input.data, s.input.shape, 'float32'));
writeFileSync(out, JSON.stringify({ shape: y.shape, data: Array.from(y.dataSync()) }));
