#!/usr/bin/env node
// The entry point of each bundled program in the image (scripts/bundle.js copies it to dist/bundle/<program>/main.js,
// beside the program's bundle, program.js). It runs program.js as Node's CommonJS loader would, but compiles it with
// V8's code cache from program.cache when there is one: V8 then skips parsing the whole bundle at start (the sidecar's
// 1.3 MiB took about a third of its start to /readyz). A cache that does not fit is never used: program.cache begins
// with the SHA-256 of the program.js it was made from (V8 itself compares only lengths), and V8 refuses one from
// another V8 version or other flags, compiling from source instead, as Node would.
//
// `node main.js --write-code-cache` writes program.cache and exits: the image build runs it with the node binary the
// image runs (a cache is only good for the V8 that made it, with the same flags), scripts/bundle.js with the node
// that bundles.
'use strict';
const { Buffer } = require('node:buffer');
const crypto = require('node:crypto');
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const PROGRAM = path.join(__dirname, 'program.js');
const CACHE = path.join(__dirname, 'program.cache');
const HASH_BYTES = 32;

/** The V8 code cache for exactly the program.js with this hash, or undefined. */
function readCache(hash) {
  let cache;
  try {
    cache = fs.readFileSync(CACHE);
  } catch {
    return undefined;
  }
  return cache.subarray(0, HASH_BYTES).equals(hash) ? cache.subarray(HASH_BYTES) : undefined;
}

/**
 * program.js compiled, from the cache when it fits, and the hash of its bytes. The bytes and the cache are garbage
 * once this returns, before the program runs: held through its start they would outlive young-generation collection
 * and stay resident (2 MiB) until a full one.
 */
function compile(useCache) {
  const bytes = fs.readFileSync(PROGRAM);
  const hash = crypto.createHash('sha256').update(bytes).digest();
  // Latin-1 (scripts/bundle.js keeps the bundles so): the source is a one-byte string, as V8 keeps it. The column
  // offset keeps stack traces' columns on the first line those of program.js, not of the wrapper.
  const source = Module.wrap(bytes.toString('latin1'));
  const script = new vm.Script(source, { filename: PROGRAM, columnOffset: -Module.wrapper[0].length, cachedData: useCache ? readCache(hash) : undefined });
  return { script, hash };
}

const writing = process.argv[2] === '--write-code-cache';
const { script, hash } = compile(!writing);
const program = new Module(PROGRAM, module);
program.filename = PROGRAM;
const run = () => script.runInThisContext().call(program.exports, program.exports, Module.createRequire(PROGRAM), program, PROGRAM, __dirname);
if (writing) {
  // The cache holds the bytecode of every function compiled when it is made, so it is made after the program's
  // synchronous start: its modules' set-up and its first look at the environment, what every start runs (a fifth
  // less CPU to /readyz than a cache of the parse alone). It exits before anything asynchronous (listening, I/O). A
  // program that stops at once for want of configuration (the build has none; its log line says so) still leaves
  // its cache, and the build goes on; one that throws while loading fails it.
  let threw = false;
  process.once('exit', () => {
    if (threw) return;
    fs.writeFileSync(CACHE, Buffer.concat([hash, script.createCachedData()]));
    process.exitCode = 0;
  });
  try {
    run();
  } catch (err) {
    threw = true;
    throw err;
  }
  process.exit();
} else {
  run();
}
