// A policy that misbehaves on purpose, for the host's containment tests. The session id's prefix
// of any memory call picks the misbehaviour:
//   loop...        an infinite loop (the host's fuel / epoch deadline must stop it)
//   alloc...       allocates until memory runs out (the host's memory cap must stop it)
//   raise...       throws (an uncaught exception traps)
//   bad-output-json...  returns a message whose json member is not JSON
//   bad-output...  returns a message with no `role` (in a context, or in `evicted` for writes)
//   anything else  the default window policy (../window-js), unchanged
// It is an example of what a host must survive, never a policy to deploy.

import { readRange, apply } from 'agent-memory:policy/store@0.3.0';
import { log } from 'agent-memory:policy/log@0.3.0';
import { getSettings } from 'agent-memory:policy/config@0.3.0';
import { componentExports, createWindowPolicy } from '../window-js/window.js';
import { keepLeadingBom, readRangeVia, skipUnusedCodepointCount } from '../window-js/componentize-workarounds.js';

keepLeadingBom();

const windowPolicy = createWindowPolicy({
  getSettings() {
    const settings = getSettings();
    skipUnusedCodepointCount(settings);
    return settings;
  },
  readRange: readRangeVia(readRange, apply),
  apply,
  log,
});

/** What `alloc` holds on to, so that nothing can be collected. */
const hoard = [];

function spin() {
  let turns = 0;
  for (;;) turns = (turns + 1) | 0;
}

function allocate() {
  // Large blocks, so that the memory cap is met long before the compute budget: each one grows
  // the linear memory (wasm pages come zeroed, nothing needs touching).
  for (;;) hoard.push(new ArrayBuffer(64 << 20));
}

/** A message the contract does not allow: no role, or a json member that is not JSON. */
function badMessage(sessionId) {
  if (sessionId.startsWith('bad-output-json')) {
    return {
      members: [
        { name: 'role', value: { tag: 'text', val: 'user' } },
        { name: 'content', value: { tag: 'json', val: '{"not": json' } },
      ],
    };
  }
  return { members: [{ name: 'content', value: { tag: 'text', val: 'a message without a role' } }] };
}

const badContext = (sessionId) => ({ messages: [badMessage(sessionId)], skipped: [], degraded: undefined });
const badWrite = (sessionId) => ({ tag: 'stored', val: { appended: 1, trimmed: 1, length: 1, evicted: [badMessage(sessionId)] } });

/** Misbehave as the session id asks, or return undefined to behave. */
function misbehave(sessionId, kind) {
  if (sessionId.startsWith('loop')) spin();
  if (sessionId.startsWith('alloc')) allocate();
  if (sessionId.startsWith('raise')) throw new Error(`hostile policy: raise (${kind})`);
  if (sessionId.startsWith('bad-output')) {
    if (kind === 'context') return badContext(sessionId);
    if (kind === 'turn') return { outcome: badWrite(sessionId), context: badContext(sessionId) };
    return badWrite(sessionId);
  }
  return undefined;
}

const ok = (val) => ({ tag: 'ok', val });

/** The window, unless the session id asks for misbehaviour (behind the same export wrapper as
 * the window's, so an exception is reported as a template's would be). */
const hostilePolicy = {
  getContext: (sessionId) => {
    const bad = misbehave(sessionId, 'context');
    return bad ? ok(bad) : windowPolicy.getContext(sessionId);
  },
  addMessage: (sessionId, message) => {
    const bad = misbehave(sessionId, 'write');
    return bad ? ok(bad) : windowPolicy.addMessage(sessionId, message);
  },
  addMessages: (sessionId, messages) => {
    const bad = misbehave(sessionId, 'write');
    return bad ? ok(bad) : windowPolicy.addMessages(sessionId, messages);
  },
  addAndGetContext: (sessionId, messages) => {
    const bad = misbehave(sessionId, 'turn');
    return bad ? ok(bad) : windowPolicy.addAndGetContext(sessionId, messages);
  },
  clear: (sessionId) => {
    const bad = misbehave(sessionId, 'write');
    return bad ? ok(bad) : windowPolicy.clear(sessionId);
  },
  describeSettings: () => windowPolicy.describeSettings(),
};

const exported = componentExports(hostilePolicy, log);

export const memory = exported.memory;
export const describe = exported.describe;
