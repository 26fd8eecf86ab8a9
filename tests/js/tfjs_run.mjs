// Load DIR/model.json with tf.loadLayersModel through an in-memory handler
// (model.json + its shards concatenated per group, as the tfjs loaders do),
// run it on the NHWC input in IN (JSON {shape, data}), print the output.
// usage: node tfjs_run.mjs DIR/model.json IN.json
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';

const file = process.argv[2];
const json = JSON.parse(fs.readFileSync(file, 'utf8'));
const specs = [], bufs = [];
for (const g of json.weightsManifest) {
  specs.push(...g.weights);
  for (const p of g.paths) bufs.push(fs.readFileSync(path.join(path.dirname(file), p)));
}
const all = Buffer.concat(bufs);
const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
const model = await tf.loadLayersModel(tf.io.fromMemory({modelTopology: json.modelTopology,
                                                         weightSpecs: specs, weightData}));
const input = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const out = model.predict(tf.tensor(input.data, input.shape));
console.log(JSON.stringify({shape: out.shape, data: Array.from(out.dataSync())}));
