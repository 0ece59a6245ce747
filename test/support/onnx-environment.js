/**
 * Jest environment for suites that run ONNX Runtime in process: onnxruntime-node builds its output tensors
 * from typed arrays of Node's own realm and checks them with `instanceof`, which fails against the sandbox's
 * copies. Sharing the outer realm's typed-array constructors makes the check hold (production has one realm).
 */
const { TestEnvironment } = require('jest-environment-node');

const TYPED = ['Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Int16Array', 'Uint16Array', 'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer'];

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of TYPED) this.global[name] = globalThis[name];
  }
}

module.exports = OnnxEnvironment;
