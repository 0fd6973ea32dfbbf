import { getPolicy } from './domain/policies';
import { proposePolicy } from './domain/policy-changes';
import { InvalidRequestError } from './domain/errors';
import { bodyText, header, httpRoute, json, requireCaller } from './shared/http';
import { getRuntime } from './shared/runtime';

function expectedVersionOf(ifMatch: string | undefined, query: string | undefined): number | undefined {
  const raw = ifMatch?.replace(/^W\//, '').replace(/"/g, '') ?? query;
  if (raw === undefined) return undefined;
  if (!/^\d{1,9}$/.test(raw)) throw new InvalidRequestError('the expected version must be a whole number');
  return Number(raw);
}

function emergencyOf(raw: string | undefined): boolean {
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new InvalidRequestError('emergency must be true or false');
}

/**
 * PUT /policies (admin): YAML body, optimistic concurrency through If-Match (or ?expectedVersion=),
 * `?reason=` for the reviewers. A change is a request another admin approves (202 with its id); the
 * first policy, and an emergency change (`?emergency=true`, reason required), are stored at once (200).
 */
export const put = httpRoute('policies', getRuntime, async (event, rt) => {
  const admin = await requireCaller(event, rt, [rt.config.adminGroup]);
  const query = event.queryStringParameters ?? {};
  const outcome = await proposePolicy(
    rt.deps,
    { source: bodyText(event), expectedVersion: expectedVersionOf(header(event, 'if-match'), query.expectedVersion), reason: query.reason, emergency: emergencyOf(query.emergency) },
    admin,
    { admin: rt.config.adminGroup, auditor: rt.config.auditorGroup },
  );
  if (outcome.kind === 'submitted') {
    const { kind: _kind, ...request } = outcome;
    return json(202, { status: 'pending', ...request });
  }
  const { version, updatedAt, updatedBy } = outcome.record;
  return json(200, { version, updatedAt, updatedBy, emergency: outcome.emergency }, { etag: `"${version}"` });
});

/** GET /policies (admin): the current policy and its version. */
export const get = httpRoute('policies', getRuntime, async (event, rt) => {
  await requireCaller(event, rt, [rt.config.adminGroup]);
  const record = await getPolicy(rt.deps);
  return json(200, record, { etag: `"${record.version}"` });
});
