// Installed size (node_modules) of a minimal app that exports traces with
// polytel (its npm pack tarball) and with the official SDK
// (@opentelemetry/sdk-trace-base + exporter-trace-otlp-proto + api +
// resources, at the versions of this folder's package.json).
//
//   npm run bench:size        (needs bindings/js built)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(here, 'package.json'), 'utf8'));
const dir = mkdtempSync(path.join(tmpdir(), 'polytel-size-'));
const npm = (args, cwd) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

function du(p) {
  let bytes = 0;
  let files = 0;
  for (const e of readdirSync(p, { withFileTypes: true })) {
    const f = path.join(p, e.name);
    if (e.isDirectory()) {
      const sub = du(f);
      bytes += sub.bytes;
      files += sub.files;
    } else if (e.isFile()) {
      bytes += statSync(f).size;
      files++;
    }
  }
  return { bytes, files };
}

function app(name, deps) {
  const d = path.join(dir, name);
  mkdirSync(d);
  writeFileSync(path.join(d, 'package.json'), JSON.stringify({ name, private: true, type: 'module' }));
  npm(['install', '--no-audit', '--no-fund', '--omit=dev', ...deps], d);
  return du(path.join(d, 'node_modules'));
}

const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', dir], path.join(here, '..', '..', 'bindings', 'js')))[0];
const polytel = app('polytel-app', [path.join(dir, packed.filename)]);
const otelDeps = ['@opentelemetry/api', '@opentelemetry/sdk-trace-base', '@opentelemetry/exporter-trace-otlp-proto', '@opentelemetry/resources'];
const otel = app('otel-app', otelDeps.map((d) => `${d}@${pkg.dependencies[d]}`));
const mb = (b) => (b / 1e6).toFixed(2) + ' MB';
console.log('| minimal tracing app | node_modules | files |');
console.log('|---|---|---|');
console.log(`| polytel ${packed.version} (tarball ${mb(packed.size)}) | ${mb(polytel.bytes)} | ${polytel.files} |`);
console.log(`| ${otelDeps.map((d) => `${d.split('/')[1]}@${pkg.dependencies[d]}`).join(', ')} | ${mb(otel.bytes)} | ${otel.files} |`);
console.log(`\nratio polytel / OTel: ${(polytel.bytes / otel.bytes).toFixed(2)} (bytes)`);
