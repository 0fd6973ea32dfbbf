import { UsageError } from './args';

/** `--limit N --next TOKEN` of a paged listing (sessions, agents). */
export const PAGE_OPTIONS = { limit: { type: 'string' }, next: { type: 'string' } } as const;

/** The largest page a listing asks for (the API caps pages itself too). */
export const MAX_PAGE_LIMIT = 9999;

/** Adds the page options to a listing's query; a limit that is no whole number from 1 to MAX_PAGE_LIMIT is a usage error. */
export function addPage(q: URLSearchParams, values: { limit?: string; next?: string }, usage: string): URLSearchParams {
  if (values.limit !== undefined && !(/^[1-9]\d*$/.test(values.limit) && Number(values.limit) <= MAX_PAGE_LIMIT)) {
    throw new UsageError(`--limit must be a whole number from 1 to ${MAX_PAGE_LIMIT}; ${usage}`);
  }
  if (values.limit) q.set('limit', values.limit);
  if (values.next) q.set('next', values.next);
  return q;
}

/** The next page is the caller's to ask for: said on stderr, so that stdout stays the table. */
export function tellNext(command: string, next: string | undefined): void {
  if (next) console.error(`more: ${command} --next ${next}`);
}
