import { LineCounter, parseDocument } from 'yaml';
import { err, ok, type Result } from '../result';
import { policySchema, type PolicyDocument } from './schema';

export const MAX_POLICY_BYTES = 256 * 1024;

export interface PolicyProblem {
  /** Dotted path into the document, e.g. `rules.0.actions.write`. Empty for document-level problems. */
  readonly path: string;
  readonly message: string;
  /** 1-based YAML line where the path starts, when it can be located. */
  readonly line?: number;
}

export class InvalidPolicyError extends Error {
  constructor(readonly problems: readonly PolicyProblem[]) {
    super(problems.map((p) => `${p.path || '(document)'}${p.line ? ` (line ${p.line})` : ''}: ${p.message}`).join('; '));
    this.name = 'InvalidPolicyError';
  }
}

/** Parses and validates a policy YAML document. Never throws: problems come back with their path and line. */
export function parsePolicy(source: string): Result<PolicyDocument, InvalidPolicyError> {
  if (Buffer.byteLength(source, 'utf8') > MAX_POLICY_BYTES) {
    return err(new InvalidPolicyError([{ path: '', message: `policy larger than ${MAX_POLICY_BYTES} bytes` }]));
  }
  const lines = new LineCounter();
  const doc = parseDocument(source, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return err(
      new InvalidPolicyError(
        doc.errors.map((e) => ({ path: '', message: e.message.split('\n')[0] ?? 'invalid YAML', line: e.linePos?.[0]?.line })),
      ),
    );
  }
  const parsed = policySchema.safeParse(doc.toJS({ maxAliasCount: 50 }) ?? {});
  if (parsed.success) return ok(parsed.data);
  return err(
    new InvalidPolicyError(
      parsed.error.issues.map((issue) => {
        const path = issue.path.map(String);
        return { path: path.join('.'), message: issue.message, line: lineOf(doc, lines, issue.path) };
      }),
    ),
  );
}

function lineOf(doc: ReturnType<typeof parseDocument>, lines: LineCounter, path: readonly PropertyKey[]): number | undefined {
  // Walk up the path until a node exists: a missing key is reported at its parent.
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth) as unknown[], true) as { range?: [number, number, number] } | undefined;
    if (node && typeof node === 'object' && node.range) return lines.linePos(node.range[0]).line;
  }
  return undefined;
}
