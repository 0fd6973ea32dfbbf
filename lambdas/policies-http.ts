import { getPolicy, putPolicy } from './domain/policies';
import { InvalidRequestError } from './domain/errors';
import { bodyText, header, httpRoute, json, requireCaller } from './shared/http';
import { getRuntime } from './shared/runtime';

function expectedVersionOf(ifMatch: string | undefined, query: string | undefined): number | undefined {
  const raw = ifMatch?.replace(/^W\//, '').replace(/"/g, '') ?? query;
  if (raw === undefined) return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw new InvalidRequestError('the expected version must be a whole number');
  return Number(raw);
}

/** PUT /policies (admin): YAML body, optimistic concurrency through If-Match (or ?expectedVersion=). */
export const put = httpRoute('policies', getRuntime, async (event, rt) => {
  const admin = await requireCaller(event, rt, [rt.config.adminGroup]);
  const expected = expectedVersionOf(header(event, 'if-match'), event.queryStringParameters?.expectedVersion);
  const record = await putPolicy(rt.deps, bodyText(event), expected, admin);
  return json(200, { version: record.version, updatedAt: record.updatedAt, updatedBy: record.updatedBy }, { etag: `"${record.version}"` });
});

/** GET /policies (admin): the current policy and its version. */
export const get = httpRoute('policies', getRuntime, async (event, rt) => {
  await requireCaller(event, rt, [rt.config.adminGroup]);
  const record = await getPolicy(rt.deps);
  return json(200, record, { etag: `"${record.version}"` });
});
