import { UsageError } from './args';

/** `--limit N --next TOKEN` of a paged listing (sessions, agents). */
export const PAGE_OPTIONS = { limit: { type: 'string' }, next: { type: 'string' } } as const;

/** Adds the page options to a listing's query; a limit that is no whole number from 1 to 9999 is a usage error. */
export function addPage(q: URLSearchParams, values: { limit?: string; next?: string }, usage: string): URLSearchParams {
  if (values.limit !== undefined && !/^[1-9]\d{0,3}$/.test(values.limit)) throw new UsageError(`--limit must be a whole number from 1 to 9999; ${usage}`);
  if (values.limit) q.set('limit', values.limit);
  if (values.next) q.set('next', values.next);
  return q;
}

/** The next page is the caller's to ask for: said on stderr, so that stdout stays the table. */
export function tellNext(command: string, next: string | undefined): void {
  if (next) console.error(`more: ${command} --next ${next}`);
}
