#!/usr/bin/env node
// Self-test of the compat scaffold (no stagedoor involved): starts the helper servers as child
// processes exactly the way the Rust harness should (piped stdin, ready line on stdout, PORT=0),
// drives them, asserts, and kills them. Ends with "N passed, N failed[, N skipped]".
//   node selftest.js            # base tier (needs only this folder's node_modules)
//   node selftest.js --real     # also the real-backend tier (needs real-backend/node_modules)
import { spawn, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const children = [];
let passed = 0;
let failed = 0;
let skipped = 0;

function start(script, env = {}, cwd = here) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script], {
      cwd,
      env: { ...process.env, PORT: '0', ...env },
      stdio: ['pipe', 'pipe', 'pipe'], // stdin kept open: closing it stops the server
    });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', d => (stderr += d));
    const timer = setTimeout(() => reject(new Error(`${script}: no ready line in 30 s\n${stderr}`)), 30000);
    child.once('exit', code => reject(new Error(`${script} exited early (${code})\n${stderr}`)));
    // Some tools (Backstage's config loader) print other lines first: take the first JSON ready line.
    createInterface({ input: child.stdout }).on('line', line => {
      try {
        const info = JSON.parse(line);
        if (info.ready) {
          clearTimeout(timer);
          resolve(info);
        }
      } catch {
        /* not ours */
      }
    });
  });
}

function run(script, env, args = []) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { cwd: here, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
      resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

function check(name, cond, detail) {
  if (cond) {
    passed++;
    process.stdout.write(`ok   ${name}\n`);
  } else {
    failed++;
    process.stdout.write(`FAIL ${name}\n     ${JSON.stringify(detail)?.slice(0, 800)}\n`);
  }
}

const post = async (url, body, headers = {}) => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const text = await r.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, body: json };
};
const results = r => r.results?.map(x => x.result);

const APPLY_BODY = {
  items: [
    { id: '1', resourceRef: 'component:default/payments', resourceType: 'catalog-entity', conditions: { rule: 'IS_ENTITY_OWNER', resourceType: 'catalog-entity', params: { claims: ['group:default/team-a'] } } },
    { id: '2', resourceRef: ['component:default/payments', 'api:default/payments-api', 'component:default/none'], resourceType: 'catalog-entity', conditions: { anyOf: [{ rule: 'IS_ENTITY_KIND', resourceType: 'catalog-entity', params: { kinds: ['API'] } }] } },
  ],
};

async function main() {
  const withReal = process.argv.includes('--real');
  const [fake, mint] = await Promise.all([start('fake-permission-backend.js'), start('mint.js')]);
  const [pluginOff, pluginAuth] = await Promise.all([
    start('plugin-backend.js'),
    start('plugin-backend.js', { AUTH_MODE: 'backstage', DISCOVERY_URL: mint.url, STATIC_TOKENS: 'static-ci-token-123=ci-bot' }),
  ]);

  // --- PermissionClient wire format against the fake backend
  const plain = await run('client-smoke.js', { STAGEDOOR_URL: fake.url, STAGEDOOR_TOKEN: 'tok' });
  check('client: authorize (unbatched)', JSON.stringify(results(plain.authorize)) === '["ALLOW","ALLOW","DENY","DENY"]', plain.authorize);
  check('client: authorizeConditional returns CONDITIONAL', plain.authorizeConditional.results?.[0]?.result === 'CONDITIONAL', plain.authorizeConditional);
  const batched = await run('client-smoke.js', { STAGEDOOR_URL: fake.url, STAGEDOOR_TOKEN: 'tok', STAGEDOOR_BATCHED: '1' });
  check('client: authorize (batched)', JSON.stringify(results(batched.authorize)) === '["ALLOW","ALLOW","DENY","DENY"]', batched.authorize);
  const log = await (await fetch(`${fake.url}/__requests`)).json();
  check('client: 4 POSTs to /api/permission/authorize', log.length === 4 && log.every(r => r.method === 'POST' && r.url === '/api/permission/authorize'), log.length);
  check('client: headers', log[0].headers.authorization === 'Bearer tok' && log[0].headers['content-type'] === 'application/json', log[0].headers);
  check('client: unbatched = one item per query with uuid id', log[0].body.items.length === 4 && /^[0-9a-f-]{36}$/.test(log[0].body.items[0].id), log[0].body);
  check('client: batched = one item per permission name, resourceRef array', log[2].body.items.length === 3 && Array.isArray(log[2].body.items[1].resourceRef), log[2].body);
  const disabled = await run('client-smoke.js', { STAGEDOOR_URL: fake.url, STAGEDOOR_PERMISSION_ENABLED: '0' });
  const after = await (await fetch(`${fake.url}/__requests`)).json();
  check('client: permission.enabled=false → ALLOW without HTTP', after.length === 4 && results(disabled.authorize).every(r => r === 'ALLOW'), disabled);

  // --- apply-conditions on the real integration router
  const ac = `${pluginOff.baseUrl}/.well-known/backstage/permissions/apply-conditions`;
  const r1 = await post(ac, APPLY_BODY);
  check('apply-conditions: results', r1.status === 200 && JSON.stringify(r1.body) === '{"items":[{"id":"1","result":"ALLOW"},{"id":"2","result":["DENY","ALLOW","DENY"]}]}', r1);
  const r2 = await post(ac, { items: [{ id: 'x', resourceRef: 'a', resourceType: 'nope', conditions: { rule: 'R', resourceType: 'nope' } }] });
  check('apply-conditions: unknown resource type → 400 InputError', r2.status === 400 && r2.body.error?.name === 'InputError', r2);
  const meta = await (await fetch(`${pluginOff.baseUrl}/.well-known/backstage/permissions/metadata`)).json();
  check('metadata: 2 rules with draft-07 schemas', meta.rules?.length === 2 && meta.rules[0].paramsSchema.$schema === 'http://json-schema.org/draft-07/schema#', meta);

  // --- auth emulation with minted tokens
  const t = mint.tokens;
  const acAuth = `${pluginAuth.baseUrl}/.well-known/backstage/permissions/apply-conditions`;
  const cases = [
    ['no token → 401', undefined, 401],
    ['user token (no actor) → 403', t.userJane, 403],
    ['limited token → 401', t.limitedJane, 401],
    ['expired user token → 401', t.userJaneExpired, 401],
    ['plugin obo token → 200', t.pluginPermissionToCatalogOboJane, 200],
    ['plugin service token → 200', t.pluginStagedoorToCatalog, 200],
    ['plugin token for another audience → 401', t.pluginCatalogToPermission, 401],
    ['static external token → 200', 'static-ci-token-123', 200],
  ];
  for (const [name, token, status] of cases) {
    const r = await post(acAuth, APPLY_BODY, token ? { authorization: `Bearer ${token}` } : {});
    check(`auth emulation: ${name}`, r.status === status, r);
  }
  const ui = await fetch(`${mint.url}/api/auth/v1/userinfo`, { headers: { authorization: `Bearer ${t.userJaneNoEnt}` } }).then(r => r.json());
  check('mint: userinfo serves ent', JSON.stringify(ui.claims?.ent) === '["user:default/jane","group:default/team-a"]', ui);

  // --- optional real-backend tier
  const realDir = path.join(here, 'real-backend');
  if (!withReal) {
    skipped++;
    process.stdout.write('skip real-backend tier (pass --real)\n');
  } else if (!existsSync(path.join(realDir, 'node_modules'))) {
    skipped++;
    process.stdout.write('skip real-backend tier (run npm ci in real-backend/)\n');
  } else {
    const real = await start('backend.cjs', { MINT_URL: mint.url }, realDir);
    const direct = await run('client-smoke.js', { STAGEDOOR_URL: real.url, STAGEDOOR_TOKEN: t.userJane });
    check('real: authorize as jane', JSON.stringify(results(direct.authorize)) === '["ALLOW","ALLOW","DENY","DENY"]', direct.authorize);
    check('real: authorizeConditional as direct user → 400', direct.authorizeConditional.error?.statusCode === 400, direct.authorizeConditional);
    const obo = (await post(`${mint.url}/__mint/plugin`, { sub: 'stagedoor', aud: 'permission', obo: t.userJane })).body.token;
    const viaPlugin = await run('client-smoke.js', { STAGEDOOR_URL: real.url, STAGEDOOR_TOKEN: obo });
    check('real: authorizeConditional with obo token → CONDITIONAL', viaPlugin.authorizeConditional.results?.[0]?.result === 'CONDITIONAL', viaPlugin.authorizeConditional);
    const svc = await run('client-smoke.js', { STAGEDOOR_URL: real.url, STAGEDOOR_TOKEN: 'static-ci-token-123' });
    check('real: service token → 403', svc.authorize.error?.statusCode === 403, svc.authorize);
    const ver = await run('verify-with-backend-defaults.cjs', {
      MINT_URL: mint.url,
      BACKEND_DEFAULTS_DIR: path.join(realDir, 'node_modules/@backstage/backend-defaults'),
    });
    check('real: backend-defaults token handlers accept mint.js tokens', ver.ok, ver.checks.filter(c => !c.ok));
  }
}

try {
  await main();
} catch (e) {
  failed++;
  process.stdout.write(`FAIL harness: ${e.stack ?? e}\n`);
} finally {
  for (const c of children) c.stdin.end(); // graceful: servers exit on stdin EOF
  setTimeout(() => children.forEach(c => c.exitCode === null && c.kill('SIGKILL')), 3000).unref();
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exitCode = failed ? 1 : 0;
}
