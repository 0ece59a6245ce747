// `npm run bundle`: one self-contained file per program for the image, so the sidecar's layer carries none of the
// webhook's Kubernetes client. Built from the TypeScript sources (isolatedModules keeps esbuild's per-file
// transpilation equal to tsc's), written where the image runs them:
//   dist/bundle/proxy/               node dist/proxy/main.js        (the sidecar; the image's default command)
//   dist/bundle/webhook/             node dist/webhook/main.js
//   dist/bundle/classifier/          node dist/classifier/main.js   (the model tier)
//   dist/bundle/THIRD_PARTY_NOTICES.txt   name, version, license text of every package inlined or shipped
//   dist/external/node_modules/      the EXTERNAL packages, which the image puts in /app/node_modules
// Each program's folder holds program.js (the bundle), main.js (scripts/entry.js, which runs it) and program.cache
// (V8's code cache for program.js, made by this node; the image build makes it again with the image's node).
// EXTERNAL packages are native addons that cannot be inlined: ONNX Runtime (the classifier, and the proxy's
// CLASSIFIER=local). Each ships only what it loads at run time: the JavaScript files esbuild resolves from its entry
// (its dependencies' too), its package.json and license, and its binaries for this platform and architecture (the
// image build runs on the target's), so no install script, type or other platform's binary goes into the image.
// `require.main` is defined as null: bundled, every module shares the entry's `module`, so a CLI guard
// (`if (require.main === module)`) in a module the program imports would otherwise run that CLI at start. Entries
// therefore start unconditionally.
const { build } = require('esbuild');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'dist', 'bundle');
const EXTERNAL_OUT = path.join(ROOT, 'dist', 'external', 'node_modules');
const PROGRAMS = ['proxy', 'webhook', 'classifier'];
const EXTERNAL = ['onnxruntime-node'];
const PLATFORM_DIR = `${path.sep}${process.platform}${path.sep}${process.arch}${path.sep}`;
const OS_NAMES = /[\\/](linux|darwin|win32|freebsd|openbsd|sunos|aix|android)[\\/]/;

/** The package directory (relative to ROOT) an esbuild input path lies in, if any. */
function packageDirOf(input) {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return m ? m[1] : undefined;
}

function licenseFile(dir) {
  return fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
}

function notice(dir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const file = licenseFile(dir);
  const text = file ? fs.readFileSync(path.join(dir, file), 'utf8').trim() : `(no license file; package.json says: ${pkg.license ?? 'unknown'})`;
  return `${pkg.name}@${pkg.version} (${pkg.license ?? 'see below'})\n\n${text}\n`;
}

function copyInto(relFile) {
  const to = path.join(EXTERNAL_OUT, relFile.slice(relFile.indexOf('node_modules/') + 'node_modules/'.length));
  fs.mkdirSync(path.dirname(to), { recursive: true });
  fs.copyFileSync(path.join(ROOT, relFile), to);
}

/** A file with every package.json between it and its package's root: nested ones set the module type (dist/cjs). */
function copyWithScope(relFile, packageDir) {
  copyInto(relFile);
  for (let dir = path.dirname(relFile); dir.length > packageDir.length; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(ROOT, dir, 'package.json'))) copyInto(path.join(dir, 'package.json'));
  }
}

/** Copies one external package's run-time files into EXTERNAL_OUT; returns the package directories it took. */
async function shipExternal(name) {
  const entry = path.relative(ROOT, require.resolve(name, { paths: [ROOT] }));
  // A dry bundle from the package's entry lists every file it requires; `.node` addons are only listed.
  const result = await build({
    entryPoints: [entry], bundle: true, write: false, platform: 'node', metafile: true, logLevel: 'error',
    loader: { '.node': 'empty' },
  });
  const dirs = new Set();
  for (const input of Object.keys(result.metafile.inputs)) {
    const dir = packageDirOf(input);
    if (!dir) continue;
    dirs.add(dir);
    if (!input.endsWith('.node')) copyWithScope(input, dir);
    // A native addon: only this platform's, with the shared libraries next to it (ONNX Runtime's .so).
    else if (!OS_NAMES.test(input) || input.includes(PLATFORM_DIR)) {
      for (const f of fs.readdirSync(path.join(ROOT, path.dirname(input)))) copyInto(path.join(path.dirname(input), f));
    }
  }
  for (const dir of dirs) {
    for (const f of ['package.json', licenseFile(path.join(ROOT, dir))].filter(Boolean)) copyInto(path.join(dir, f));
  }
  return [...dirs];
}

/**
 * V8 keeps a program's source in memory for as long as it runs, as one byte per character only if every character
 * is Latin-1: one other character (a typographic apostrophe in a String.raw regex, which esbuild cannot escape) makes
 * the whole bundle a two-byte string, 1.3 MiB more idle memory in the sidecar. Such a character is written as \u2019.
 */
function assertLatin1(file) {
  const text = fs.readFileSync(file, 'utf8');
  const at = text.search(/[\u0100-\uffff]/);
  if (at < 0) return;
  const code = text.codePointAt(at).toString(16).toUpperCase().padStart(4, '0');
  throw new Error(`${path.relative(ROOT, file)}: U+${code} in ${JSON.stringify(text.slice(Math.max(0, at - 60), at + 20))} is not Latin-1, so V8 would keep the whole program's source as a two-byte string; write it as a \\u escape in the source`);
}

/** Beside the program's bundle: its entry point and V8's code cache for it, made by this node. */
function writeEntry(program) {
  const dir = path.join(OUT, program);
  const bundle = path.join(dir, 'program.js');
  // The entry's `#!` line: program.js is compiled as a function body, where it is not allowed.
  fs.writeFileSync(bundle, fs.readFileSync(bundle, 'utf8').replace(/^#!.*\n/, ''));
  assertLatin1(bundle);
  fs.copyFileSync(path.join(__dirname, 'entry.js'), path.join(dir, 'main.js'));
  fs.chmodSync(path.join(dir, 'main.js'), 0o755);
  // The program's own log lines (it finds no configuration here) are not the bundler's. Without NODE_OPTIONS, as the
  // image runs it: V8 refuses a cache made under other flags.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  execFileSync(process.execPath, [path.join(dir, 'main.js'), '--write-code-cache'], { stdio: ['ignore', 'ignore', 'inherit'], env });
}

async function main() {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.rmSync(path.dirname(EXTERNAL_OUT), { recursive: true, force: true });
  const result = await build({
    entryPoints: Object.fromEntries(PROGRAMS.map((p) => [`${p}/program`, path.join(ROOT, p, 'main.ts')])),
    outdir: OUT,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: EXTERNAL,
    keepNames: true,
    // Without comments and whitespace the bundle parses faster and its source, which V8 keeps in memory, is smaller.
    // Identifiers stay (keepNames, no minifyIdentifiers) so stack traces and logs read as the code does.
    minifyWhitespace: true,
    minifySyntax: true,
    define: { 'require.main': 'null' },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  for (const program of PROGRAMS) writeEntry(program);
  const inlined = new Set(Object.keys(result.metafile.inputs).map(packageDirOf).filter(Boolean));
  const shipped = [];
  for (const name of EXTERNAL) shipped.push(...(await shipExternal(name)));
  const notices = [...new Set([...inlined, ...shipped])].sort().map((d) => notice(path.join(ROOT, d)));
  const programs = PROGRAMS.map((p) => `dist/${p}/main.js`).join(', ');
  fs.writeFileSync(path.join(OUT, 'THIRD_PARTY_NOTICES.txt'), `Packages bundled into ${programs}, or shipped beside them in node_modules\n\n${notices.join('\n---\n\n')}`);
  for (const [file, out] of Object.entries(result.metafile.outputs)) console.log(`${path.relative(ROOT, file)}  ${(out.bytes / 1024 / 1024).toFixed(1)} MiB`);
  const mib = (dir) => fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).reduce((n, e) => n + fs.statSync(path.join(e.parentPath, e.name)).size, 0) / 1048576;
  console.log(`${path.relative(ROOT, EXTERNAL_OUT)}  ${shipped.map((d) => path.basename(d)).join(', ')}  ${mib(EXTERNAL_OUT).toFixed(1)} MiB`);
  console.log(`dist/bundle/THIRD_PARTY_NOTICES.txt  ${notices.length} packages`);
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
