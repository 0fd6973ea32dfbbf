import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { AwsApiError, operationOf, readJsonBody, sendAwsError, sendAwsJson } from './json-protocol';

export const SECRETS_PREFIX = '/@secretsmanager';
export const LINK_KEY_SECRET_ID = 'twokey/link-signing-key';

/** Secrets Manager stand-in (GetSecretValue) holding the approval-link signing key, kept in the data dir (0600). */
export class LocalSecrets {
  private readonly secrets = new Map<string, string>();

  constructor(dataDir: string | undefined) {
    const file = dataDir ? join(dataDir, 'link-signing-key') : undefined;
    let key: string;
    if (file && existsSync(file)) key = readFileSync(file, 'utf8').trim();
    else {
      key = randomBytes(32).toString('base64url');
      if (file) writeFileSync(file, key, { mode: 0o600 });
    }
    this.secrets.set(LINK_KEY_SECRET_ID, key);
  }

  /** Adds or replaces a secret (local mode's Slack app secrets). */
  put(id: string, value: string): void {
    this.secrets.set(id, value);
  }

  async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const body = await readJsonBody(req);
      if (operationOf(req) !== 'GetSecretValue') throw new AwsApiError(400, 'UnknownOperationException', 'only GetSecretValue is available locally');
      const id = String(body.SecretId ?? '');
      const value = this.secrets.get(id);
      if (value === undefined) throw new AwsApiError(400, 'ResourceNotFoundException', `secret ${id} not found`);
      sendAwsJson(res, { ARN: `arn:aws:secretsmanager:us-east-1:000000000000:secret:${id}`, Name: id, SecretString: value, VersionId: 'local' }, 'application/x-amz-json-1.1');
    } catch (e) {
      sendAwsError(res, e);
    }
  }
}
