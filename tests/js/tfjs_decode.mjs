// Decode every weight of a model.json with tfjs's own tf.io.decodeWeights
// (quantized ones included) and print name, dtype, shape and the SHA-256 of
// its little-endian values, and the values (not with --no-values).
// usage: node tfjs_decode.mjs DIR/model.json [--no-values]
import * as tf from '@tensorflow/tfjs';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const file = process.argv[2];
const values = process.argv[3] !== '--no-values';
const json = JSON.parse(fs.readFileSync(file, 'utf8'));
const out = [];
for (const g of json.weightsManifest) {
  const all = Buffer.concat(g.paths.map((p) => fs.readFileSync(path.join(path.dirname(file), p))));
  const ab = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const decoded = tf.io.decodeWeights(ab, g.weights);
  for (const w of g.weights) {
    const t = decoded[w.name];
    const v = t.dataSync();
    const bytes = t.dtype === 'bool' ? Buffer.from(Uint8Array.from(v)) : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    out.push({name: w.name, dtype: t.dtype, shape: t.shape,
              sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
              values: values ? Array.from(v, Number) : null});
  }
}
console.log(JSON.stringify(out));
