// Runs a built policy component in Node: `jco transpile` it (from this directory's pinned jco) and
// instantiate it with a FakeHost as its imports. For the component tests, which run only when
// given a component (see README.md).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const POLICIES = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The component at `wasmPath`, instantiated with imports that call `box.host` (swap it between
 * tests: one instance serves many calls, as in the host): its { memory, describe } exports.
 */
export async function loadComponent(wasmPath, box) {
  const out = mkdtempSync(join(tmpdir(), 'policy-component-'));
  const jco = join(POLICIES, 'node_modules', '.bin', 'jco');
  const run = spawnSync(jco, ['transpile', wasmPath, '--name', 'policy', '--instantiation', 'async', '--no-typescript', '-q', '-o', out], {
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`jco transpile failed: ${run.stderr}`);
  // jco's Node-side glue lifts the component's strings with `new TextDecoder()`, which drops a
  // leading U+FEFF: keep it, so that what the tests see is what the component returned.
  const glue = join(out, 'policy.js');
  writeFileSync(glue, readFileSync(glue, 'utf8').replaceAll('new TextDecoder()', "new TextDecoder('utf-8', { ignoreBOM: true })"));
  const { instantiate } = await import(pathToFileURL(glue).href);
  const config = { getSettings: () => box.host.getSettings() };
  const log = { log: (level, message) => box.host.log(level, message) };
  const store = {
    readRange: (key, range) => box.host.readRange(key, range),
    apply: (key, ops) => box.host.apply(key, ops),
  };
  const imports = {
    'agent-memory:policy/config': config,
    'agent-memory:policy/log': log,
    'agent-memory:policy/store': store,
    // The version-qualified names, for jco versions that use them.
    'agent-memory:policy/config@0.3.0': config,
    'agent-memory:policy/log@0.3.0': log,
    'agent-memory:policy/store@0.3.0': store,
  };
  const component = await instantiate((path) => WebAssembly.compile(readFileSync(join(out, path))), imports);
  return {
    memory: component.memory ?? component['agent-memory:policy/memory@0.3.0'],
    describe: component.describe ?? component['agent-memory:policy/describe@0.3.0'],
  };
}
