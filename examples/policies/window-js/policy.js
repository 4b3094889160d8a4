// The default window policy as a component: the WIT imports wired to the policy in window.js.
// Build: see README.md (jco componentize ... --world-name policy --disable all).

import { readRange, apply } from 'agent-memory:policy/store@0.3.0';
import { log } from 'agent-memory:policy/log@0.3.0';
import { getSettings } from 'agent-memory:policy/config@0.3.0';
import { componentExports, createWindowPolicy } from './window.js';
import { keepLeadingBom, readRangeVia, skipUnusedCodepointCount } from './componentize-workarounds.js';

keepLeadingBom();

const host = {
  getSettings() {
    const settings = getSettings();
    skipUnusedCodepointCount(settings);
    return settings;
  },
  readRange: readRangeVia(readRange, apply),
  apply,
  log,
};

const exported = componentExports(createWindowPolicy(host), log);

export const memory = exported.memory;
export const describe = exported.describe;
