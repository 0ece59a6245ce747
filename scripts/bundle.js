// `npm run bundle`: one self-contained file per program for the image, so the sidecar's layer carries no
// node_modules (and none of the webhook's Kubernetes client). Built from the TypeScript sources (isolatedModules
// keeps esbuild's per-file transpilation equal to tsc's), written where the image runs them:
//   dist/bundle/proxy/main.js      node dist/proxy/main.js      (the sidecar; the image's default command)
//   dist/bundle/webhook/main.js    node dist/webhook/main.js
//   dist/bundle/THIRD_PARTY_NOTICES.txt   name, version, license text of every package inlined into either file
// EXTERNAL lists packages that must stay outside a bundle (native addons); none today.
// `require.main` is defined as null: bundled, every module shares the entry's `module`, so a CLI guard
// (`if (require.main === module)`) in a module the program imports would otherwise run that CLI at start.
const { build } = require('esbuild');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'dist', 'bundle');
const ENTRIES = ['proxy/main.ts', 'webhook/main.ts'];
const EXTERNAL = [];

function packageDirs(metafile) {
  const dirs = new Set();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(path.join(ROOT, m[1]));
  }
  return [...dirs].sort();
}

function notice(dir) {
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const licenseFile = fs.readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  const text = licenseFile ? fs.readFileSync(path.join(dir, licenseFile), 'utf8').trim() : `(no license file; package.json says: ${pkg.license ?? 'unknown'})`;
  return `${pkg.name}@${pkg.version} (${pkg.license ?? 'see below'})\n\n${text}\n`;
}

async function main() {
  fs.rmSync(OUT, { recursive: true, force: true });
  const result = await build({
    entryPoints: ENTRIES.map((e) => path.join(ROOT, e)),
    outdir: OUT,
    outbase: ROOT,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: EXTERNAL,
    keepNames: true,
    define: { 'require.main': 'null' },
    legalComments: 'none',
    metafile: true,
    logLevel: 'warning',
  });
  const notices = packageDirs(result.metafile).map(notice);
  fs.writeFileSync(path.join(OUT, 'THIRD_PARTY_NOTICES.txt'), `Packages bundled into dist/proxy/main.js and dist/webhook/main.js\n\n${notices.join('\n---\n\n')}`);
  for (const [file, out] of Object.entries(result.metafile.outputs)) console.log(`${path.relative(ROOT, file)}  ${(out.bytes / 1024 / 1024).toFixed(1)} MiB`);
  console.log(`dist/bundle/THIRD_PARTY_NOTICES.txt  ${notices.length} packages`);
}

main().catch((err) => {
  console.error(err.message);
  process.exit(1);
});
