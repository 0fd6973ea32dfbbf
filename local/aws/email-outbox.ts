import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { AwsApiError, readJsonBody, sendAwsError, sendAwsJson } from './json-protocol';

export const SES_PREFIX = '/@ses';

interface SimpleEmail {
  FromEmailAddress?: string;
  Destination?: { ToAddresses?: string[] };
  Content?: { Simple?: { Subject?: { Data?: string }; Body?: { Text?: { Data?: string }; Html?: { Data?: string } } } };
}

/**
 * SES v2 stand-in (`POST /v2/email/outbound-emails`): each email becomes an .eml file in the outbox,
 * and a console line shows the recipient and the first link, so a developer can click it.
 */
export class LocalEmailOutbox {
  constructor(
    private readonly dir: string,
    private readonly announce: (line: string) => void,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  async serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    try {
      if (req.method !== 'POST' || path !== '/v2/email/outbound-emails') throw new AwsApiError(404, 'NotFoundException', 'not found');
      const mail = (await readJsonBody(req)) as SimpleEmail;
      const to = mail.Destination?.ToAddresses ?? [];
      const simple = mail.Content?.Simple;
      if (to.length === 0 || !simple?.Subject?.Data) throw new AwsApiError(400, 'BadRequestException', 'recipient and subject are required');
      const id = randomUUID();
      const boundary = `twokey-${id}`;
      const eml = [
        `Message-ID: <${id}@twokey.local>`,
        `Date: ${new Date().toUTCString()}`,
        `From: ${mail.FromEmailAddress ?? 'twokey@localhost'}`,
        `To: ${to.join(', ')}`,
        `Subject: ${simple.Subject.Data}`,
        'MIME-Version: 1.0',
        `Content-Type: multipart/alternative; boundary="${boundary}"`,
        '',
        `--${boundary}`,
        'Content-Type: text/plain; charset=utf-8',
        '',
        simple.Body?.Text?.Data ?? '',
        `--${boundary}`,
        'Content-Type: text/html; charset=utf-8',
        '',
        simple.Body?.Html?.Data ?? '',
        `--${boundary}--`,
        '',
      ].join('\r\n');
      const file = join(this.dir, `${Date.now()}-${to[0]?.replace(/[^A-Za-z0-9@.-]/g, '_')}-${id.slice(0, 8)}.eml`);
      writeFileSync(file, eml, { mode: 0o600 });
      const link = /https?:\/\/\S+/.exec(simple.Body?.Text?.Data ?? '')?.[0];
      this.announce(`mail to ${to.join(', ')}: ${simple.Subject.Data}${link ? `\n  ${link}` : ''}`);
      sendAwsJson(res, { MessageId: id }, 'application/json');
    } catch (e) {
      sendAwsError(res, e);
    }
  }
}
