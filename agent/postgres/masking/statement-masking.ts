import { UNKNOWN_SOURCE, type ColumnMask, type MaskingProfile } from '../../../core/masking/profile';
import type { PgCatalog } from './catalog';
import type { CopyPlan } from './copy-rows';
import type { Lineage } from './lineage';
import type { Node } from './lineage-scope';
import { planFromLineage } from './result-plans';
import { analyzeSql, type AnalyzedStatement } from './statement-analysis';

export type StatementMasking =
  | { readonly kind: 'ok'; readonly copy: CopyPlan | undefined }
  | { readonly kind: 'deny'; readonly message: string }
  /** The statement names a relation the catalog does not know: reload it, then ask again. */
  | { readonly kind: 'reload' };

const OK: StatementMasking = { kind: 'ok', copy: undefined };

/**
 * What masking asks of a statement before it runs: that it reads masked columns only through routes
 * the agent can trace (not dynamic SQL in DO or in functions that run SQL text, nor an EXECUTE of a
 * statement prepared out of its sight); in strict mode, that no masked column is used except as a plain output column (anything
 * else could infer its value); for COPY TO STDOUT, how to mask the copied rows, or a refusal when they
 * cannot be masked by column. `knowsPrepared` says whether the session prepared a name through the agent.
 */
export function checkStatement(sql: string, profile: MaskingProfile, catalog: PgCatalog, mayReload: boolean, knowsPrepared: (name: string) => boolean): StatementMasking {
  const analyzed = analyzeSql(sql, catalog);
  if (analyzed.kind === 'error') return { kind: 'deny', message: analyzed.message };
  if (analyzed.missing && mayReload) return { kind: 'reload' };
  const preparedHere = new Set<string>();
  let copy: CopyPlan | undefined;
  for (const analysis of analyzed.statements) {
    const { node: stmt, lineage } = analysis;
    const untraced = untracedRoute(analysis, (name) => preparedHere.has(name) || knowsPrepared(name));
    if (untraced && profile.masksColumns) return { kind: 'deny', message: untraced };
    if (analysis.storesValues && planFromLineage(lineage, profile).readsMasked) {
      return { kind: 'deny', message: `twokey: ${analysis.storesValues}() in a statement that reads masked columns would keep a value for later, unmasked` };
    }
    const prepare = stmt.PrepareStmt as Node | undefined;
    if (prepare) preparedHere.add(String(prepare.name));
    if (profile.strict) {
      const violation = strictViolation(lineage, profile);
      if (violation) return { kind: 'deny', message: violation };
    }
    const copyStmt = stmt.CopyStmt as Node | undefined;
    if (copyStmt && copyStmt.is_from !== true) {
      const plan = copyPlan(copyStmt, lineage, profile, catalog);
      if (typeof plan === 'string') return { kind: 'deny', message: plan };
      if (copy && plan) return { kind: 'deny', message: 'twokey: one COPY TO STDOUT per query string under masking' };
      copy = plan;
    }
  }
  return copy ? { kind: 'ok', copy } : OK;
}

/** Why a statement's reads cannot be traced (it runs SQL the agent never sees, or changes how the server reads the SQL after it), or undefined. */
function untracedRoute(analysis: AnalyzedStatement, knowsPrepared: (name: string) => boolean): string | undefined {
  const { node: stmt, sqlText } = analysis;
  if (analysis.setsStringSyntax) {
    return 'twokey: standard_conforming_strings cannot be changed under masking (the agent reads string literals as the server does only with it on)';
  }
  if (stmt.DoStmt) return 'twokey: DO blocks run SQL the agent cannot read, so they cannot be masked; run the statements themselves';
  if (sqlText) return `twokey: ${sqlText}() runs SQL the agent cannot read, so its result cannot be masked`;
  const execute = stmt.ExecuteStmt as Node | undefined;
  if (execute && !knowsPrepared(String(execute.name))) {
    return `twokey: EXECUTE of "${String(execute.name)}", which was not prepared through twokey in this session, cannot be masked`;
  }
  return undefined;
}

function strictViolation(lineage: Lineage, profile: MaskingProfile): string | undefined {
  for (const [source, where] of lineage.uses) {
    const mask = profile.column(source);
    if (mask?.strict) return `twokey: ${describe(source)} is masked (strict) and cannot be used in ${where}`;
  }
  for (const out of lineage.outputs) {
    if (out.plain && out.sources.size <= 1) continue;
    for (const source of out.sources) {
      if (profile.column(source)?.strict) return `twokey: ${describe(source)} is masked (strict) and can only be selected as a plain column, not in an expression`;
    }
  }
  return undefined;
}

function describe(source: string): string {
  return source === UNKNOWN_SOURCE ? 'a column the agent cannot identify' : `column ${source}`;
}

function copyPlan(copy: Node, lineage: Lineage, profile: MaskingProfile, catalog: PgCatalog): CopyPlan | string | undefined {
  if (copy.filename !== undefined || copy.is_program === true) return undefined;
  const options = new Map<string, string>();
  for (const o of (copy.options as Node[] | undefined) ?? []) {
    const d = o.DefElem as Node | undefined;
    if (!d) continue;
    const arg = d.arg as Node | undefined;
    const value = (arg?.String as Node | undefined)?.sval ?? (arg?.Boolean as Node | undefined)?.boolval ?? (arg?.Integer as Node | undefined)?.ival ?? 'true';
    options.set(String(d.defname), String(value));
  }
  const format = options.get('format') ?? 'text';
  if (format === 'binary') return 'twokey: COPY in binary format cannot be masked; use text or csv';
  const standard = [...options.keys()].every((k) => k === 'format' || k === 'header' || k === 'delimiter' || k === 'null');
  const delimiter = options.get('delimiter') ?? (format === 'csv' ? ',' : '\t');
  const header = format === 'csv' && options.has('header') && options.get('header') !== 'false';
  const relation = copy.relation as Node | undefined;
  if (!relation) {
    const masked = lineage.outputs.some((o) => profile.derived(o.sources, o.plain));
    if (masked || [...lineage.uses.keys()].some((s) => profile.column(s))) {
      return 'twokey: COPY (query) TO STDOUT of a masked column cannot be masked by column; COPY the table, or SELECT instead';
    }
    return { format: format === 'csv' ? 'csv' : 'text', delimiter, header, columns: undefined };
  }
  const schema = relation.schemaname === undefined ? undefined : String(relation.schemaname);
  const relations = catalog.lookup(schema, String(relation.relname));
  const wanted = ((copy.attlist as Node[] | undefined) ?? []).map((a) => String((a.String as Node | undefined)?.sval ?? ''));
  const names = wanted.length ? wanted : (relations[0]?.columns ?? []);
  const columns: (ColumnMask | undefined)[] = names.map((name) => {
    let found: ColumnMask | undefined;
    for (const rel of relations) {
      const i = rel.columns.indexOf(name);
      if (i < 0) continue;
      const out = rel.view?.outputs[i];
      const m = out ? profile.derived(out.sources, out.plain) : profile.column(`${rel.schema}.${rel.name}.${name}`);
      if (m) found = m;
    }
    return found;
  });
  if (columns.some((c) => c) && (!standard || relations.length !== 1 || (format !== 'csv' && format !== 'text'))) {
    return 'twokey: this COPY of masked columns cannot be masked; use the default text or csv options';
  }
  return { format: format === 'csv' ? 'csv' : 'text', delimiter, header, columns };
}
