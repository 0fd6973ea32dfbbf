/**
 * A unified line diff (the format of `diff -u`), for showing a reviewer what a change does. Pure.
 * Myers' O((N+M)·D) algorithm ("An O(ND) Difference Algorithm and Its Variations", 1986) on the lines
 * between the common prefix and suffix.
 */

/** Lines of unchanged context around each change, as `diff -u` prints by default. */
export const DIFF_CONTEXT_LINES = 3;
/**
 * Past this many inserted plus deleted lines the search for a shortest edit stops, and the differing
 * middle is shown as removed and added whole: still a correct diff, with work and memory bounded
 * (time O((N+M)·D), memory O(D²)) whatever the input.
 */
export const MAX_DIFF_EDITS = 1000;

const NO_NEWLINE = '\\ No newline at end of file';

export interface LineDiff {
  /** The unified diff, empty when the texts are equal. */
  readonly text: string;
  readonly added: number;
  readonly removed: number;
}

type Op = { readonly op: ' ' | '-' | '+'; readonly line: string };

export function unifiedLineDiff(before: string, after: string, labels: { readonly before: string; readonly after: string }): LineDiff {
  const a = linesOf(before);
  const b = linesOf(after);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const middleA = a.slice(start, endA);
  const middleB = b.slice(start, endB);
  const middle = shortestEdit(middleA, middleB, MAX_DIFF_EDITS) ?? [
    ...middleA.map((line) => ({ op: '-' as const, line })),
    ...middleB.map((line) => ({ op: '+' as const, line })),
  ];
  const ops: Op[] = [...a.slice(0, start).map(same), ...middle, ...a.slice(endA).map(same)];
  const added = ops.filter((o) => o.op === '+').length;
  const removed = ops.filter((o) => o.op === '-').length;
  if (added + removed === 0) return { text: '', added, removed };
  return { text: [`--- ${labels.before}`, `+++ ${labels.after}`, ...hunks(ops, DIFF_CONTEXT_LINES)].join('\n') + '\n', added, removed };
}

const same = (line: string): Op => ({ op: ' ', line });

/** Lines without their newlines; a last line without one carries the marker `diff -u` prints after it. */
function linesOf(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  else lines[lines.length - 1] += `\n${NO_NEWLINE}`;
  return lines;
}

/** The shortest edit script from a to b, or undefined when it needs more than maxEdits edits. */
function shortestEdit(a: readonly string[], b: readonly string[], maxEdits: number): Op[] | undefined {
  const n = a.length;
  const m = b.length;
  const offset = maxEdits + 1;
  const v = new Int32Array(2 * maxEdits + 3);
  // trace[d] holds, for each diagonal k in [-d, d] (at index k + d), the furthest x reached with d edits.
  const trace: Int32Array[] = [];
  for (let d = 0; d <= maxEdits; d++) {
    for (let k = -d; k <= d; k += 2) {
      const down = k === -d || (k !== d && (v[offset + k - 1] ?? 0) < (v[offset + k + 1] ?? 0));
      let x = down ? (v[offset + k + 1] ?? 0) : (v[offset + k - 1] ?? 0) + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        trace.push(v.slice(offset - d, offset + d + 1));
        return backtrack(trace, a, b);
      }
    }
    trace.push(v.slice(offset - d, offset + d + 1));
  }
  return undefined;
}

function backtrack(trace: readonly Int32Array[], a: readonly string[], b: readonly string[]): Op[] {
  const ops: Op[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = trace.length - 1; d > 0; d--) {
    const previous = trace[d - 1] as Int32Array;
    const reached = (k: number): number => previous[k + d - 1] ?? 0;
    const k = x - y;
    const down = k === -d || (k !== d && reached(k - 1) < reached(k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevX = reached(prevK);
    const prevY = prevX - prevK;
    const editEndX = down ? prevX : prevX + 1;
    while (x > editEndX) {
      ops.push(same(a[x - 1] as string));
      x--;
      y--;
    }
    ops.push(down ? { op: '+', line: b[prevY] as string } : { op: '-', line: a[prevX] as string });
    x = prevX;
    y = prevY;
  }
  while (x > 0) {
    ops.push(same(a[x - 1] as string));
    x--;
  }
  return ops.reverse();
}

/** Groups the edit script into hunks with `context` unchanged lines around each change. */
function hunks(ops: readonly Op[], context: number): string[] {
  // linesBefore[i]: lines of the old (a) and new (b) text before ops[i].
  const linesBefore: { a: number; b: number }[] = [];
  let a = 0;
  let b = 0;
  for (const o of ops) {
    linesBefore.push({ a, b });
    if (o.op !== '+') a++;
    if (o.op !== '-') b++;
  }
  linesBefore.push({ a, b });
  const changed = ops.flatMap((o, i) => (o.op === ' ' ? [] : [i]));
  const out: string[] = [];
  let i = 0;
  while (i < changed.length) {
    let last = changed[i] as number;
    let j = i + 1;
    while (j < changed.length && (changed[j] as number) - last <= 2 * context + 1) last = changed[j++] as number;
    const from = Math.max(0, (changed[i] as number) - context);
    const to = Math.min(ops.length, last + context + 1);
    const start = linesBefore[from] as { a: number; b: number };
    const end = linesBefore[to] as { a: number; b: number };
    // One push per line: spreading a hunk of a few hundred thousand lines as arguments overflows the stack.
    out.push(`@@ -${range(start.a, end.a - start.a)} +${range(start.b, end.b - start.b)} @@`);
    for (const o of ops.slice(from, to)) out.push(`${o.op}${o.line}`);
    i = j;
  }
  return out;
}

/** `diff -u` ranges: `start,length`, `start` alone for one line, and the line before for none. */
function range(linesBefore: number, length: number): string {
  if (length === 1) return String(linesBefore + 1);
  return `${length === 0 ? linesBefore : linesBefore + 1},${length}`;
}
