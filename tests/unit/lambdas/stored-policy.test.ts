import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseStoredPolicy } from '../../../lambdas/domain/policies';
import { withDevIssuer } from '../../../local/oidc/dev-issuer';

const source = withDevIssuer(readFileSync(join(__dirname, '../../../examples/dev/policy.yaml'), 'utf8'), 'https://issuer.test');
const record = (version: number, text: string) => ({ version, source: text, updatedAt: '2026-11-28T00:00:00.000Z', updatedBy: 'admin' });

describe('stored policy parsing', () => {
  it('parses a stored policy once while it stays the current one', () => {
    const first = parseStoredPolicy(record(1, source));
    expect(first.ok).toBe(true);
    expect(parseStoredPolicy(record(1, source))).toBe(first);
  });

  it('parses again when the source changes, invalid sources included', () => {
    const valid = parseStoredPolicy(record(1, source));
    const changed = parseStoredPolicy(record(2, source.replace(/mode: best-effort/, 'mode: strict')));
    expect(changed).not.toBe(valid);
    expect(changed.ok && changed.value.recording.mode).toBe('strict');
    expect(parseStoredPolicy(record(3, 'rules: [')).ok).toBe(false);
  });
});
