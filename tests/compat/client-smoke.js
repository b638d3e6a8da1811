#!/usr/bin/env node
// Drives the REAL PermissionClient from @backstage/plugin-permission-common against
// `${STAGEDOOR_URL}/api/permission` and prints the results as ONE line of JSON on stdout.
//
// Env:
//   STAGEDOOR_URL                 base URL (required), e.g. http://127.0.0.1:7007
//   STAGEDOOR_TOKEN               optional Backstage token, sent as `Authorization: Bearer …`
//   STAGEDOOR_BATCHED             "1"/"true" → permission.EXPERIMENTAL_enableBatchedRequests: true
//   STAGEDOOR_PERMISSION_ENABLED  "0"/"false" → permission.enabled: false (client answers ALLOW, no HTTP)
//
// Input (optional): argv[2] = path of a JSON scenario file, or "-" to read it from stdin:
//   { "authorize":            [ { "permission": {name, attributes?, resourceType?}, "resourceRef"?: "kind:ns/name" } ],
//     "authorizeConditional": [ { "permission": {...} } ] }
// Permissions are built with the real createPermission(). Without input a default scenario runs.
//
// Output: {"config":{...},"authorize":{"ok":true,"results":[…]},"authorizeConditional":{"ok":false,"error":{…}}}
// A failing call (HTTP error, zod response validation) is reported in its own `error`, never thrown;
// the exit code is 0 whenever the JSON line was printed, 2 for bad input.
import { readFileSync } from 'node:fs';
import { ConfigReader } from '@backstage/config';
import { PermissionClient, createPermission } from '@backstage/plugin-permission-common';

const baseUrl = process.env.STAGEDOOR_URL?.replace(/\/+$/, '');
if (!baseUrl) {
  process.stderr.write('STAGEDOOR_URL is required\n');
  process.exit(2);
}
const token = process.env.STAGEDOOR_TOKEN || undefined;
const truthy = v => v !== undefined && ['1', 'true', 'yes'].includes(v.toLowerCase());
const batched = truthy(process.env.STAGEDOOR_BATCHED ?? '');
const enabled = !['0', 'false', 'no'].includes((process.env.STAGEDOOR_PERMISSION_ENABLED ?? 'true').toLowerCase());

const DEFAULT_SCENARIO = {
  authorize: [
    { permission: { name: 'catalog.location.read', attributes: { action: 'read' } } },
    { permission: { name: 'catalog.entity.read', attributes: { action: 'read' }, resourceType: 'catalog-entity' }, resourceRef: 'component:default/payments' },
    { permission: { name: 'catalog.entity.read', attributes: { action: 'read' }, resourceType: 'catalog-entity' }, resourceRef: 'component:default/secret-stuff' },
    { permission: { name: 'catalog.entity.delete', attributes: { action: 'delete' }, resourceType: 'catalog-entity' }, resourceRef: 'component:default/payments' },
  ],
  authorizeConditional: [
    { permission: { name: 'catalog.entity.read', attributes: { action: 'read' }, resourceType: 'catalog-entity' } },
    { permission: { name: 'catalog.location.read', attributes: { action: 'read' } } },
  ],
};

function loadScenario() {
  const arg = process.argv[2];
  if (!arg) return DEFAULT_SCENARIO;
  try {
    return JSON.parse(readFileSync(arg === '-' ? 0 : arg, 'utf8'));
  } catch (e) {
    process.stderr.write(`cannot read scenario ${arg}: ${e.message}\n`);
    process.exit(2);
  }
}

const toQuery = q => ({
  permission: createPermission({
    name: q.permission.name,
    attributes: q.permission.attributes ?? {},
    ...(q.permission.resourceType ? { resourceType: q.permission.resourceType } : {}),
  }),
  ...(q.resourceRef !== undefined ? { resourceRef: q.resourceRef } : {}),
});

function describeError(e) {
  return {
    name: e?.name,
    message: e?.message,
    // ResponseError (non-2xx) carries the status and the parsed Backstage error body.
    ...(e?.statusCode !== undefined ? { statusCode: e.statusCode } : {}),
    ...(e?.body !== undefined ? { body: e.body } : {}),
    // ZodError (response did not match the client's schema) carries issues.
    ...(Array.isArray(e?.issues) ? { issues: e.issues } : {}),
  };
}

async function run(fn) {
  try {
    return { ok: true, results: await fn() };
  } catch (e) {
    return { ok: false, error: describeError(e) };
  }
}

const scenario = loadScenario();
const discovery = {
  async getBaseUrl(pluginId) {
    return `${baseUrl}/api/${pluginId}`;
  },
  async getExternalBaseUrl(pluginId) {
    return `${baseUrl}/api/${pluginId}`;
  },
};
const configData = { permission: { enabled, EXPERIMENTAL_enableBatchedRequests: batched } };
const client = new PermissionClient({ discovery, config: new ConfigReader(configData) });
const options = token ? { token } : undefined;

const out = { config: configData, permissionApi: `${baseUrl}/api/permission`, token: Boolean(token) };
if (scenario.authorize) {
  out.authorize = await run(() => client.authorize(scenario.authorize.map(toQuery), options));
}
if (scenario.authorizeConditional) {
  out.authorizeConditional = await run(() =>
    client.authorizeConditional(scenario.authorizeConditional.map(toQuery), options),
  );
}
process.stdout.write(`${JSON.stringify(out)}\n`);
