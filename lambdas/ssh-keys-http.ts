import { addSshKey, listSshKeys, removeSshKey } from './domain/ssh-keys';
import { InvalidRequestError } from './domain/errors';
import { bodyJson, httpRoute, json, requireCaller } from './shared/http';
import { getRuntime } from './shared/runtime';

/** POST /ssh-keys {publicKey, signedAt, signature, ttlSeconds?} (any signed-in caller): registers the caller's own key, its possession proven. */
export const add = httpRoute('ssh-keys', getRuntime, async (event, rt) => {
  const caller = await requireCaller(event, rt, []);
  return json(201, await addSshKey(rt.deps, caller, bodyJson(event)));
});

/** GET /ssh-keys: the caller's unexpired keys. */
export const list = httpRoute('ssh-keys', getRuntime, async (event, rt) => {
  const caller = await requireCaller(event, rt, []);
  return json(200, { keys: await listSshKeys(rt.deps, caller) });
});

/** DELETE /ssh-keys?key=FINGERPRINT|ID: removes one of the caller's keys (a fingerprint has `/` in it: a query, not a path segment). */
export const remove = httpRoute('ssh-keys', getRuntime, async (event, rt) => {
  const caller = await requireCaller(event, rt, []);
  const key = event.queryStringParameters?.key;
  if (!key) throw new InvalidRequestError('key (a fingerprint or an id) is required');
  return json(200, { removed: await removeSshKey(rt.deps, caller, key) });
});
