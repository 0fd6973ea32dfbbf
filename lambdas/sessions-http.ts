import { getSession, listSessions, recordingDownload } from './domain/sessions';
import { InvalidRequestError } from './domain/errors';
import { httpRoute, json, pageParams, queryNumber, requireCaller } from './shared/http';
import { getRuntime } from './shared/runtime';

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?$/;

function instant(value: string | undefined, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (!ISO_INSTANT.test(value)) throw new InvalidRequestError(`${name} must be an ISO 8601 time`);
  return value;
}

/** GET /sessions?target=&user=&from=&to=&limit=&next= (auditor or admin): a page, newest first, and `next` while there are more. */
export const list = httpRoute('sessions', getRuntime, async (event, rt) => {
  await requireCaller(event, rt, [rt.config.auditorGroup, rt.config.adminGroup]);
  const q = event.queryStringParameters ?? {};
  const page = await listSessions(rt.deps, { target: q.target, user: q.user, from: instant(q.from, 'from'), to: instant(q.to, 'to') }, pageParams(event));
  return json(200, page);
});

/** GET /sessions/{id} (auditor or admin). */
export const get = httpRoute('sessions', getRuntime, async (event, rt) => {
  await requireCaller(event, rt, [rt.config.auditorGroup, rt.config.adminGroup]);
  return json(200, await getSession(rt.deps, event.pathParameters?.id ?? ''));
});

/** GET /sessions/{id}/recording?from=&limit= (auditor or admin): short-lived URLs for the manifest and a page of chunks. */
export const recording = httpRoute('sessions', getRuntime, async (event, rt) => {
  const caller = await requireCaller(event, rt, [rt.config.auditorGroup, rt.config.adminGroup]);
  return json(200, await recordingDownload(rt.deps, event.pathParameters?.id ?? '', caller, { fromSeq: queryNumber(event, 'from'), limit: queryNumber(event, 'limit') }));
});
