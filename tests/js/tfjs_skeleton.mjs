// Build a small TF.js layers CNN and save it as a skeleton: DIR/model.json
// (format layers-model) and its weights in two shards cut mid-weight, as
// the tfjs file writers lay them out.  usage: node tfjs_skeleton.mjs DIR
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';

const dir = process.argv[2];
const model = tf.sequential();
model.add(tf.layers.conv2d({name: 'c1', inputShape: [8, 8, 3], filters: 4, kernelSize: 3,
                            activation: 'relu'}));
model.add(tf.layers.conv2d({name: 'c2', filters: 5, kernelSize: 3, padding: 'same',
                            activation: 'relu'}));
model.add(tf.layers.globalAveragePooling2d({name: 'gap'}));
model.add(tf.layers.dense({name: 'fc', units: 3}));
await model.save(tf.io.withSaveHandler(async (a) => {
  const data = Buffer.from(a.weightData);
  const cut = 101; // inside c1/kernel: a weight straddles the shards
  const paths = ['group1-shard1of2.bin', 'group1-shard2of2.bin'];
  fs.writeFileSync(path.join(dir, paths[0]), data.subarray(0, cut));
  fs.writeFileSync(path.join(dir, paths[1]), data.subarray(cut));
  const json = {modelTopology: a.modelTopology, format: 'layers-model',
                generatedBy: 'TensorFlow.js tfjs-layers v' + tf.version.tfjs, convertedBy: null,
                weightsManifest: [{paths, weights: a.weightSpecs}]};
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
  return {modelArtifactsInfo: {dateSaved: new Date(), modelTopologyType: 'JSON'}};
}));
