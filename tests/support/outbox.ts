import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getRuntime } from '../../lambdas/shared/runtime';
import { waitFor } from './control-plane';

export interface OutboxMail {
  readonly file: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly link: string;
  readonly token: string;
}

export function readOutbox(dir: string): OutboxMail[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.eml'))
    .sort()
    .map((file) => {
      const eml = readFileSync(join(dir, file), 'utf8');
      const link = /(https?:\/\/\S+\/approvals\/review\?t=\S+)/.exec(eml)?.[1] ?? '';
      return {
        file,
        to: /^To: (.*)$/m.exec(eml)?.[1]?.trim() ?? '',
        subject: /^Subject: (.*)$/m.exec(eml)?.[1]?.trim() ?? '',
        text: eml,
        link,
        token: decodeURIComponent(new URL(link || 'http://x/?t=').searchParams.get('t') ?? ''),
      };
    });
}

/** Waits for a mail to `to` whose text mentions `mentions` and that was not in `seen`. */
export function waitForMail(dir: string, to: string, mentions: string, seen: ReadonlySet<string> = new Set(), timeoutMs = 15_000): Promise<OutboxMail> {
  return waitFor(() => readOutbox(dir).find((m) => m.to === to && m.text.includes(mentions) && !seen.has(m.file)), timeoutMs, `mail to ${to}`);
}

export async function postDecision(link: string, token: string, decision: 'approve' | 'deny', comment = ''): Promise<{ status: number; html: string }> {
  const url = link.split('?')[0] ?? link;
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ t: token, decision, comment }).toString() });
  return { status: res.status, html: await res.text() };
}

/** Waits until the decision on the request a mail is about has been delivered to its agent (a grant it can use). */
export function decisionDelivered(mail: OutboxMail, timeoutMs = 15_000): Promise<true> {
  const requestId = /request ([0-9a-f-]{36})/.exec(mail.text)?.[1] ?? '';
  return waitFor(async () => ((await getRuntime('test').deps.approvals.get(requestId))?.delivered ? true : undefined), timeoutMs, `the decision on ${requestId} delivered to the agent`);
}
