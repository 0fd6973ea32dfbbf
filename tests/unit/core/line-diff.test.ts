import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_DIFF_EDITS, unifiedLineDiff } from '../../../core/line-diff';
import { random } from '../../support/random';

const LABELS = { before: 'version 1', after: 'proposed' };
const dir = mkdtempSync(join(tmpdir(), 'tk-diff-'));

/** GNU diff -u on the same texts, labels and all. */
function gnuDiff(before: string, after: string): string {
  writeFileSync(join(dir, 'a'), before);
  writeFileSync(join(dir, 'b'), after);
  return spawnSync('diff', ['-u', '--label', LABELS.before, '--label', LABELS.after, join(dir, 'a'), join(dir, 'b')], { encoding: 'utf8' }).stdout;
}

/** Applies a unified diff to `before` with GNU patch and returns the result. */
function patched(before: string, diff: string): string {
  writeFileSync(join(dir, 'target'), before);
  writeFileSync(join(dir, 'change.diff'), diff);
  execFileSync('patch', ['--quiet', '--force', join(dir, 'target'), join(dir, 'change.diff')]);
  return readFileSync(join(dir, 'target'), 'utf8');
}

function mutate(lines: string[], rnd: () => number): string[] {
  const out = [...lines];
  const edits = Math.floor(rnd() * 6);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(rnd() * (out.length + 1));
    const pick = rnd();
    if (pick < 0.4 && out.length > 0) out.splice(at, 1);
    else if (pick < 0.7) out.splice(at, 0, `  new-${Math.floor(rnd() * 5)}: x`);
    else if (out.length > 0) out[Math.min(at, out.length - 1)] = `  changed-${Math.floor(rnd() * 3)}`;
  }
  return out;
}

describe('unifiedLineDiff', () => {
  const policy = ['targets:', '  - { name: db, protocol: postgres, agent: a }', 'reviewers:', '  dba: [bob@example.com]', 'rules:', '  - name: r', '    targets: [db]', '    subjects: { groups: [support] }', '    actions: { read: allow, write: deny }', ''].join('\n');

  it('is empty for equal texts', () => {
    expect(unifiedLineDiff(policy, policy, LABELS)).toEqual({ text: '', added: 0, removed: 0 });
  });

  it('prints exactly what diff -u prints for a one-line change', () => {
    const after = policy.replace('write: deny', 'write: allow');
    const diff = unifiedLineDiff(policy, after, LABELS);
    expect(diff.text).toBe(gnuDiff(policy, after));
    expect(diff).toMatchObject({ added: 1, removed: 1 });
  });

  it('prints exactly what diff -u prints for additions at the start and end, and a missing final newline', () => {
    const after = `# header\n${policy}recording: { mode: off }`;
    expect(unifiedLineDiff(policy, after, LABELS).text).toBe(gnuDiff(policy, after));
    expect(unifiedLineDiff('', 'a\n', LABELS).text).toBe(gnuDiff('', 'a\n'));
    expect(unifiedLineDiff('a\nb\n', '', LABELS).text).toBe(gnuDiff('a\nb\n', ''));
  });

  it('yields a patch that turns the old text into the new one, as short as diff -u finds, for 120 random edits', () => {
    const lines = policy.split('\n').slice(0, -1);
    for (let seed = 1; seed <= 120; seed++) {
      const rnd = random(seed);
      const before = `${mutate(lines, rnd).join('\n')}\n`;
      const after = `${mutate(lines, rnd).join('\n')}\n`;
      const diff = unifiedLineDiff(before, after, LABELS);
      if (diff.text === '') {
        expect(after).toBe(before);
        continue;
      }
      expect({ seed, result: patched(before, diff.text) }).toEqual({ seed, result: after });
      const gnu = gnuDiff(before, after).split('\n');
      const count = (prefix: string) => gnu.filter((l) => l.startsWith(prefix) && !l.startsWith(`${prefix}${prefix}${prefix} `)).length;
      expect({ seed, added: diff.added, removed: diff.removed }).toEqual({ seed, added: count('+'), removed: count('-') });
    }
  });

  it('bounds the work for texts that share nothing: the middle is replaced whole, and the patch still applies', () => {
    const lines = (prefix: string) => Array.from({ length: MAX_DIFF_EDITS }, (_, i) => `${prefix}${i}`).join('\n');
    const before = `same\n${lines('old-')}\nsame end\n`;
    const after = `same\n${lines('new-')}\nsame end\n`;
    const started = process.hrtime.bigint();
    const diff = unifiedLineDiff(before, after, LABELS);
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2_000);
    expect(diff).toMatchObject({ added: MAX_DIFF_EDITS, removed: MAX_DIFF_EDITS });
    expect(patched(before, diff.text)).toBe(after);
  });

  it('diffs a text of half a million lines in one hunk (a held Kubernetes create of a 512 KB body) instead of overflowing the stack', () => {
    const after = `${Array.from({ length: 500_000 }, () => '- ""').join('\n')}\n`;
    const diff = unifiedLineDiff('', after, LABELS);
    expect(diff).toMatchObject({ added: 500_000, removed: 0 });
    expect(diff.text.startsWith(`--- ${LABELS.before}\n+++ ${LABELS.after}\n@@ -0,0 +1,500000 @@\n+- ""\n`)).toBe(true);
  });
});
