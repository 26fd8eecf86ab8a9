// Run a Keras model in tfjs-layers (a faithful implementation of Keras layers).
// Usage: node keras_predict.mjs DIR
//   DIR/model.json   {modelTopology, weightSpecs, inputShape}: the HDF5 file's
//                    model_config and its weights in layer_names/weight_names order
//   DIR/weights.bin  little-endian float32 weights in that order
//   DIR/input.bin    little-endian float32 input of shape inputShape
// Writes DIR/output.bin (float32) and prints the output shape as JSON.
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import path from 'node:path';

// LayerScale of keras/src/applications/convnext.py (a custom Keras layer that
// tfjs-layers lacks), as written there: x * gamma, gamma of shape (projection_dim,).
class LayerScale extends tf.layers.Layer {
  constructor(config) {
    super(config);
    this.projectionDim = config.projectionDim;
    this.initValues = config.initValues;
  }
  build(inputShape) {
    this.gamma = this.addWeight('gamma', [this.projectionDim], 'float32', tf.initializers.zeros());
    this.built = true;
  }
  call(inputs) {
    return tf.tidy(() => tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, this.gamma.read()));
  }
  computeOutputShape(inputShape) { return inputShape; }
  getConfig() {
    return { ...super.getConfig(), projectionDim: this.projectionDim, initValues: this.initValues };
  }
  static get className() { return 'LayerScale'; }
}
tf.serialization.registerClass(LayerScale);

const dir = process.argv[2];
const meta = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
const buf = fs.readFileSync(path.join(dir, 'weights.bin'));
const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
const model = await tf.loadLayersModel(tf.io.fromMemory({
  modelTopology: meta.modelTopology, weightSpecs: meta.weightSpecs, weightData }), { strict: true });
const ib = fs.readFileSync(path.join(dir, 'input.bin'));
const x = tf.tensor(new Float32Array(ib.buffer, ib.byteOffset, ib.byteLength / 4), meta.inputShape, 'float32');
const y = model.predict(x);
fs.writeFileSync(path.join(dir, 'output.bin'), Buffer.from((await y.data()).buffer));
console.log(JSON.stringify(y.shape));
