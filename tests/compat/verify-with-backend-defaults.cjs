#!/usr/bin/env node
// OPTIONAL cross-check: feeds the tokens minted by mint.js to the REAL token code of
// @backstage/backend-defaults@0.19.0 (DefaultAuthService with UserTokenHandler +
// DefaultPluginTokenHandler, DefaultUserInfoService) and to its createLimitedUserToken.
//
// backend-defaults is NOT in package.json (624 packages, ~260 MB). Install it elsewhere:
//   mkdir -p /tmp/bd && cd /tmp/bd && echo '{"private":true}' > package.json \
//     && npm install --no-audit --no-fund @backstage/backend-defaults@0.19.0
// then: MINT_URL=http://127.0.0.1:<mint port> \
//       BACKEND_DEFAULTS_DIR=/tmp/bd/node_modules/@backstage/backend-defaults node verify-with-backend-defaults.cjs
// Prints one JSON line {"ok":bool,"checks":[{name, ok, got}]}; exit 0 iff all checks pass.
const path = require('node:path');

const dir = process.env.BACKEND_DEFAULTS_DIR;
const mintUrl = process.env.MINT_URL?.replace(/\/+$/, '');
if (!dir || !mintUrl) {
  process.stderr.write('BACKEND_DEFAULTS_DIR and MINT_URL are required\n');
  process.exit(2);
}
const dist = p => require(path.join(dir, 'dist', p));
const { UserTokenHandler } = dist('entrypoints/auth/user/UserTokenHandler.cjs.js');
const { DefaultPluginTokenHandler } = dist('entrypoints/auth/plugin/PluginTokenHandler.cjs.js');
const { DefaultAuthService } = dist('entrypoints/auth/DefaultAuthService.cjs.js');
const { DefaultUserInfoService } = dist('entrypoints/userInfo/DefaultUserInfoService.cjs.js');

const logger = {
  warn: (m, e) => process.stderr.write(`warn: ${m} ${e?.message ?? ''}\n`),
  error: (m, e) => process.stderr.write(`error: ${m} ${e?.message ?? ''}\n`),
  info: () => {},
  debug: () => {},
  child: () => logger,
};
const discovery = {
  getBaseUrl: async id => `${mintUrl}/api/${id}`,
  getExternalBaseUrl: async id => `${mintUrl}/api/${id}`,
};

function authFor(ownPluginId) {
  const user = UserTokenHandler.create({ discovery, logger });
  const plugin = DefaultPluginTokenHandler.create({
    logger,
    ownPluginId,
    keySource: { getPrivateSigningKey: async () => { throw new Error('not issuing'); }, listKeys: async () => ({ keys: [] }) },
    keyDuration: { hours: 1 },
    discovery,
  });
  const external = { verifyToken: async () => undefined };
  return { auth: new DefaultAuthService(user, plugin, external, ownPluginId, false, undefined), user };
}

const checks = [];
async function check(name, fn, expect) {
  let got;
  try {
    got = await fn();
  } catch (e) {
    got = { error: { name: e.name, message: e.message } };
  }
  const ok = expect(got);
  checks.push({ name, ok, got });
}
const principal = c => JSON.parse(JSON.stringify(c.principal));

(async () => {
  const tokens = await (await fetch(`${mintUrl}/__tokens`)).json();
  const catalog = authFor('catalog');
  const permission = authFor('permission');

  await check('user token → user principal', async () => principal(await catalog.auth.authenticate(tokens.userJane)),
    g => g.type === 'user' && g.userEntityRef === 'user:default/jane' && !g.actor);
  await check('user token without ent → user principal', async () => principal(await catalog.auth.authenticate(tokens.userJaneNoEnt)),
    g => g.type === 'user' && g.userEntityRef === 'user:default/jane');
  await check('expired user token rejected', async () => principal(await catalog.auth.authenticate(tokens.userJaneExpired)),
    g => g.error?.name === 'AuthenticationError');
  await check('limited token rejected without allowLimitedAccess', async () => principal(await catalog.auth.authenticate(tokens.limitedJane)),
    g => g.error?.message === 'Illegal limited user token');
  await check('limited token accepted with allowLimitedAccess', async () => principal(await catalog.auth.authenticate(tokens.limitedJane, { allowLimitedAccess: true })),
    g => g.type === 'user' && g.userEntityRef === 'user:default/jane');
  await check('real createLimitedUserToken == mint.js limitedJane', async () => catalog.user.createLimitedUserToken(tokens.userJane).token === tokens.limitedJane,
    g => g === true);
  await check('plugin token catalog→permission → service plugin:catalog', async () => principal(await permission.auth.authenticate(tokens.pluginCatalogToPermission)),
    g => g.type === 'service' && g.subject === 'plugin:catalog');
  await check('plugin token catalog→permission obo jane → user with actor', async () => principal(await permission.auth.authenticate(tokens.pluginCatalogToPermissionOboJane)),
    g => g.type === 'user' && g.userEntityRef === 'user:default/jane' && g.actor?.subject === 'plugin:catalog');
  await check('plugin token permission→catalog obo jane (apply-conditions caller)', async () => principal(await catalog.auth.authenticate(tokens.pluginPermissionToCatalogOboJane)),
    g => g.type === 'user' && g.actor?.subject === 'plugin:permission');
  await check('plugin token with wrong audience rejected', async () => principal(await catalog.auth.authenticate(tokens.pluginCatalogToPermission)),
    g => g.error?.message === 'Failed plugin token verification');
  await check('userInfo: ent from token', async () => new DefaultUserInfoService({ discovery }).getUserInfo(await catalog.auth.authenticate(tokens.userJane)),
    g => JSON.stringify(g.ownershipEntityRefs) === JSON.stringify(['user:default/jane', 'group:default/team-a']));
  await check('userInfo: no ent → fetched from /api/auth/v1/userinfo', async () => new DefaultUserInfoService({ discovery }).getUserInfo(await catalog.auth.authenticate(tokens.userJaneNoEnt)),
    g => JSON.stringify(g.ownershipEntityRefs) === JSON.stringify(['user:default/jane', 'group:default/team-a']));
  await check('userInfo for obo credentials (limited token) → fetched via userinfo', async () => new DefaultUserInfoService({ discovery }).getUserInfo(await catalog.auth.authenticate(tokens.pluginPermissionToCatalogOboJane)),
    g => g.userEntityRef === 'user:default/jane' && g.ownershipEntityRefs?.includes('group:default/team-a'));

  const ok = checks.every(c => c.ok);
  process.stdout.write(`${JSON.stringify({ ok, checks })}\n`);
  process.exit(ok ? 0 : 1);
})();
