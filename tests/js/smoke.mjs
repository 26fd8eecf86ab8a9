// Smoke check that the pinned runtimes load (run by tests/interop/test_runtimes.py).
import * as tf from '@tensorflow/tfjs';
import ort from 'onnxruntime-node';
import { gguf } from '@huggingface/gguf';
const x = tf.tensor2d([[1, 2], [3, 4]]);
const y = x.matMul(x).arraySync();
if (y[0][0] !== 7 || y[1][1] !== 22) throw new Error('tfjs matMul wrong: ' + JSON.stringify(y));
if (typeof ort.InferenceSession.create !== 'function') throw new Error('onnxruntime-node has no InferenceSession');
if (typeof gguf !== 'function') throw new Error('@huggingface/gguf has no gguf()');
console.log('runtimes ok: tfjs', tf.version.tfjs, 'backend', tf.getBackend());
