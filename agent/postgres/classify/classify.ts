import { parseSync } from 'libpg-query';
import type { ActionClass, BlockableStatement } from '../../../core/policy/schema';
import { ADMIN_FUNCTIONS, READ_SAFE_FUNCTIONS } from './read-safe-functions';

/** Privilege order: a multi-statement string takes its most privileged class. `unknown` is the top. */
export const CLASS_RANK: Record<ActionClass, number> = { control: 0, read: 1, write: 2, ddl: 3, admin: 4, shell: 5, unknown: 6 };

export interface Classification {
  readonly class: ActionClass;
  readonly statements: readonly BlockableStatement[];
  readonly tables: readonly string[];
  readonly functions: readonly string[];
  /** `PREPARE name AS ...` statements and the class of what they prepare. */
  readonly prepares: readonly { name: string; class: ActionClass }[];
  /** `EXECUTE name`: the session resolves these to the class they were prepared with. */
  readonly executes: readonly string[];
  /** `DEALLOCATE name` / `DEALLOCATE ALL`. */
  readonly deallocates: readonly string[] | 'all';
  /** True when a literal value decided the class (EXPLAIN (ANALYZE false)): such a result must not be cached by shape. */
  readonly literalSensitive: boolean;
  /** Why the statement is `unknown`, when it is. */
  readonly reason?: string;
  readonly statementCount: number;
}

/** Settings that change nothing but the caller's own view of the session. */
const HARMLESS_SETTINGS = new Set([
  'search_path', 'statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout', 'idle_session_timeout',
  'application_name', 'datestyle', 'timezone', 'intervalstyle', 'extra_float_digits', 'client_min_messages',
  'bytea_output', 'work_mem', 'maintenance_work_mem', 'enable_seqscan', 'enable_indexscan', 'enable_bitmapscan',
  'enable_hashjoin', 'enable_mergejoin', 'enable_nestloop', 'random_page_cost', 'seq_page_cost', 'jit', 'geqo',
  'max_parallel_workers_per_gather', 'statement_mem', 'default_statistics_target', 'lc_monetary', 'lc_numeric', 'lc_time',
  'transaction_isolation', 'transaction_deferrable', 'default_transaction_isolation', 'plan_cache_mode', 'xmlbinary',
  'xmloption', 'join_collapse_limit', 'from_collapse_limit', 'cursor_tuple_fraction', 'row_security', 'twokey.reason',
]);
const ADMIN_SETTINGS = new Set(['role', 'session_authorization', 'session_replication_role', 'default_transaction_read_only', 'transaction_read_only']);

const DDL_STATEMENTS = new Set([
  'CreateStmt', 'AlterTableStmt', 'DropStmt', 'IndexStmt', 'CreateFunctionStmt', 'AlterFunctionStmt', 'ViewStmt',
  'CreateSeqStmt', 'AlterSeqStmt', 'CommentStmt', 'RenameStmt', 'CreateSchemaStmt', 'CreateTableAsStmt', 'RefreshMatViewStmt',
  'CreateTrigStmt', 'RuleStmt', 'CompositeTypeStmt', 'CreateEnumStmt', 'AlterEnumStmt', 'CreateRangeStmt', 'DefineStmt',
  'CreateDomainStmt', 'AlterDomainStmt', 'AlterObjectSchemaStmt', 'CreateCastStmt', 'CreateOpClassStmt', 'CreateOpFamilyStmt',
  'AlterOpFamilyStmt', 'CreateConversionStmt', 'CreateStatsStmt', 'AlterStatsStmt', 'CreatePolicyStmt', 'AlterPolicyStmt',
  'CreateTransformStmt', 'AlterCollationStmt', 'AlterTypeStmt', 'AlterTSDictionaryStmt', 'AlterTSConfigurationStmt',
  'CreatePLangStmt', 'AlterTableMoveAllStmt', 'AlterExtensionContentsStmt',
]);
const ADMIN_STATEMENTS = new Set([
  'GrantStmt', 'GrantRoleStmt', 'CreateRoleStmt', 'AlterRoleStmt', 'AlterRoleSetStmt', 'DropRoleStmt', 'AlterSystemStmt',
  'AlterDatabaseStmt', 'AlterDatabaseSetStmt', 'AlterDatabaseRefreshCollStmt', 'CreatedbStmt', 'DropdbStmt',
  'AlterDefaultPrivilegesStmt', 'CreateExtensionStmt', 'AlterExtensionStmt', 'LoadStmt', 'CreateFdwStmt', 'AlterFdwStmt',
  'CreateForeignServerStmt', 'AlterForeignServerStmt', 'CreateUserMappingStmt', 'AlterUserMappingStmt', 'DropUserMappingStmt',
  'ImportForeignSchemaStmt', 'CreateForeignTableStmt', 'SecLabelStmt', 'AlterOwnerStmt', 'ReassignOwnedStmt',
  'DropOwnedStmt', 'CreateEventTrigStmt', 'AlterEventTrigStmt', 'CreatePublicationStmt', 'AlterPublicationStmt',
  'CreateSubscriptionStmt', 'AlterSubscriptionStmt', 'DropSubscriptionStmt', 'CreateTableSpaceStmt', 'DropTableSpaceStmt',
  'AlterTableSpaceOptionsStmt', 'VacuumStmt', 'ClusterStmt', 'ReindexStmt', 'CheckPointStmt', 'AlterSystemStmt',
  'CreateAmStmt', 'ConstraintsSetStmt', 'WaitStmt',
]);
const WRITE_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

type Node = Record<string, unknown>;

class Walker {
  rank = 0;
  reason: string | undefined;
  readonly statements = new Set<BlockableStatement>();
  readonly tables = new Set<string>();
  readonly functions = new Set<string>();
  readonly prepares: { name: string; class: ActionClass }[] = [];
  readonly executes: string[] = [];
  deallocates: string[] | 'all' = [];
  literalSensitive = false;

  raise(cls: ActionClass, reason?: string): void {
    if (CLASS_RANK[cls] > this.rank) {
      this.rank = CLASS_RANK[cls];
      if (cls === 'unknown') this.reason = reason;
    }
  }

  /** One top-level statement: its own class, then everything beneath it. */
  statement(node: Node): void {
    const [type, body] = Object.entries(node)[0] ?? [];
    const b = (body ?? {}) as Node;
    switch (type) {
      case 'SelectStmt':
        this.raise('read');
        return this.walk(node);
      case 'InsertStmt':
      case 'UpdateStmt':
      case 'DeleteStmt':
      case 'MergeStmt':
        return this.walk(node);
      case 'TruncateStmt':
        this.raise('write');
        this.statements.add('truncate');
        return this.walk(node);
      case 'CopyStmt': {
        if (b.filename !== undefined || b.is_program === true) {
          this.raise('admin');
          if (b.is_program === true) this.statements.add('copy-program');
        } else this.raise(b.is_from === true ? 'write' : 'read');
        return this.walk(node);
      }
      case 'ExplainStmt': {
        const analyze = ((b.options ?? []) as Node[]).some((o) => {
          const d = o.DefElem as Node | undefined;
          if (d?.defname !== 'analyze') return false;
          if (d.arg !== undefined) this.literalSensitive = true;
          return !isFalse(d.arg);
        });
        this.raise('read');
        // Plain EXPLAIN plans without executing, so what it explains cannot write.
        if (analyze) this.statement(b.query as Node);
        else this.collectNames(b.query);
        return;
      }
      case 'PrepareStmt': {
        const inner = new Walker();
        inner.statement(b.query as Node);
        this.merge(inner);
        this.prepares.push({ name: String(b.name), class: rankToClass(inner.rank) });
        return;
      }
      case 'ExecuteStmt':
        this.raise('read');
        this.executes.push(String(b.name));
        return this.walk(b.params);
      case 'DeallocateStmt':
        this.raise('control');
        if (b.isall === true || b.name === undefined) this.deallocates = 'all';
        else if (this.deallocates !== 'all') this.deallocates.push(String(b.name));
        return;
      case 'TransactionStmt':
        this.raise(['TRANS_STMT_PREPARE', 'TRANS_STMT_COMMIT_PREPARED', 'TRANS_STMT_ROLLBACK_PREPARED'].includes(String(b.kind)) ? 'admin' : 'control');
        return;
      case 'VariableSetStmt':
        return this.raise(this.setClass(b));
      case 'VariableShowStmt':
      case 'ListenStmt':
      case 'UnlistenStmt':
      case 'FetchStmt':
      case 'ClosePortalStmt':
        return this.raise('read');
      case 'DiscardStmt':
        // DISCARD ALL deallocates every prepared statement, as DEALLOCATE ALL does.
        if (b.target === 'DISCARD_ALL') this.deallocates = 'all';
        return this.raise('control');
      case 'DeclareCursorStmt':
        this.raise('read');
        return this.walk(b.query);
      case 'NotifyStmt':
      case 'LockStmt':
        this.raise('write');
        return this.walk(node);
      case 'DoStmt':
        return this.raise('unknown', 'DO runs arbitrary code');
      case 'CallStmt':
        return this.raise('unknown', 'CALL runs a procedure');
      default:
        if (type && DDL_STATEMENTS.has(type)) {
          this.raise('ddl');
          if (type === 'DropStmt') this.statements.add('drop');
          if (type === 'AlterTableStmt') this.statements.add('alter');
          return this.collectNames(node);
        }
        if (type && ADMIN_STATEMENTS.has(type)) {
          this.raise('admin');
          if (type === 'GrantStmt' || type === 'GrantRoleStmt') this.statements.add('grant');
          return this.collectNames(node);
        }
        return this.raise('unknown', `statement ${type ?? '(none)'} is not recognized`);
    }
  }

  private setClass(b: Node): ActionClass {
    const kind = String(b.kind);
    if (kind === 'VAR_RESET_ALL') return 'control';
    const name = String(b.name ?? '').toLowerCase();
    if (name === 'transaction' || name === 'session characteristics') {
      // SET TRANSACTION ...: isolation and deferrable are harmless; READ WRITE is not.
      const writes = ((b.args ?? []) as Node[]).some((a) => (a.DefElem as Node | undefined)?.defname === 'transaction_read_only');
      return writes ? 'admin' : 'control';
    }
    return settingClass(name);
  }

  merge(other: Walker): void {
    this.literalSensitive ||= other.literalSensitive;
    if (other.rank > this.rank) {
      this.rank = other.rank;
      this.reason = other.reason;
    }
    other.statements.forEach((s) => this.statements.add(s));
    other.tables.forEach((t) => this.tables.add(t));
    other.functions.forEach((f) => this.functions.add(f));
    this.prepares.push(...other.prepares);
    this.executes.push(...other.executes);
  }

  /** Every node beneath: data-modifying statements, locking, SELECT INTO, function calls, relations. */
  walk(value: unknown): void {
    if (Array.isArray(value)) {
      for (const v of value) this.walk(v);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const [key, child] of Object.entries(value as Node)) {
      if (WRITE_NODES.has(key)) {
        const c = child as Node;
        this.raise('write');
        if (key === 'DeleteStmt' && c.whereClause === undefined) this.statements.add('delete-without-where');
        if (key === 'UpdateStmt' && c.whereClause === undefined) this.statements.add('update-without-where');
      } else if (key === 'SelectStmt') {
        const c = child as Node;
        if (c.intoClause !== undefined) this.raise('ddl');
        if (c.lockingClause !== undefined) this.raise('write');
      } else if (key === 'FuncCall') {
        this.functionCall(child as Node);
      } else if (key === 'RangeVar') {
        this.relation(child as Node);
      } else if (key === 'relation' && child && typeof child === 'object' && !('RangeVar' in (child as Node))) {
        this.relation(child as Node);
      }
      this.walk(child);
    }
  }

  /** Names only (blocks by table or function), for statements whose class does not depend on them. */
  private collectNames(value: unknown): void {
    const names = new Walker();
    names.walk(value);
    names.tables.forEach((t) => this.tables.add(t));
    names.functions.forEach((f) => this.functions.add(f));
  }

  private functionCall(call: Node): void {
    const parts = ((call.funcname ?? []) as Node[]).map((p) => String((p.String as Node | undefined)?.sval ?? ''));
    const name = parts.map((p) => p.toLowerCase());
    const schema = name.length > 1 ? name[name.length - 2] : undefined;
    const fn = name[name.length - 1] ?? '';
    this.functions.add(schema ? `${schema}.${fn}` : `pg_catalog.${fn}`);
    const builtin = schema === undefined || schema === 'pg_catalog';
    const safe = builtin && READ_SAFE_FUNCTIONS.has(fn);
    if (!safe) this.raise(builtin && ADMIN_FUNCTIONS.has(fn) ? 'admin' : 'write');
    // set_config(name, ...) is SET name: it takes that setting's class (set_config('role', ...) is SET ROLE).
    if (builtin && fn === 'set_config') {
      const name = constantText((call.args as Node[] | undefined)?.[0]);
      if (name === undefined) this.raise('unknown', 'set_config of a setting named at run time');
      else this.raise(settingClass(name.toLowerCase()));
    }
  }

  private relation(rel: Node): void {
    if (typeof rel.relname !== 'string') return;
    const schema = typeof rel.schemaname === 'string' ? rel.schemaname : rel.relname.startsWith('pg_') ? 'pg_catalog' : 'public';
    this.tables.add(`${schema}.${rel.relname}`.toLowerCase());
  }
}

/** The class of changing one setting (SET or set_config): by name, unknown unless listed. */
function settingClass(name: string): ActionClass {
  if (ADMIN_SETTINGS.has(name)) return 'admin';
  return HARMLESS_SETTINGS.has(name) ? 'control' : 'unknown';
}

/** A string constant, also under a cast ('role'::text); undefined for anything computed. */
function constantText(arg: unknown): string | undefined {
  const n = arg as Node | undefined;
  const cast = n?.TypeCast as Node | undefined;
  if (cast) return constantText(cast.arg);
  const sval = ((n?.A_Const as Node | undefined)?.sval as Node | undefined)?.sval;
  return typeof sval === 'string' ? sval : undefined;
}

function isFalse(arg: unknown): boolean {
  const n = arg as Node | undefined;
  if (!n) return false;
  const c = n.A_Const as Node | undefined;
  const s = n.String as Node | undefined;
  // Zero-valued fields are omitted from the parser's JSON: `Integer: {}` is 0, `boolval: {}` is false.
  const integer = (n.Integer ?? c?.ival) as Node | undefined;
  if (integer !== undefined) return !integer.ival;
  const bool = (n.Boolean ?? c?.boolval) as Node | undefined;
  if (bool !== undefined) return bool.boolval !== true;
  const text = String((c?.sval as Node | undefined)?.sval ?? s?.sval ?? '').toLowerCase();
  return text === 'false' || text === 'off' || text === '0';
}

const RANKED: ActionClass[] = ['control', 'read', 'write', 'ddl', 'admin', 'shell', 'unknown'];
const rankToClass = (rank: number): ActionClass => RANKED[rank] ?? 'unknown';

export function unknownClassification(reason: string): Classification {
  return { class: 'unknown', statements: [], tables: [], functions: [], prepares: [], executes: [], deallocates: [], literalSensitive: false, reason, statementCount: 0 };
}

/**
 * Classifies SQL text with the real PostgreSQL parser (libpg-query; `loadModule()` must have run).
 * Anything that fails to parse, or that the walker does not recognize, is `unknown`.
 */
export function classifySql(sql: string): Classification {
  // An empty query string is valid and does nothing (the server answers EmptyQueryResponse).
  if (/^[\s;]*$/.test(sql)) return { ...unknownClassification(''), class: 'control', reason: undefined };
  let tree: { stmts?: { stmt?: Node }[] };
  try {
    tree = parseSync(sql) as typeof tree;
  } catch (e) {
    return unknownClassification(`does not parse: ${e instanceof Error ? e.message : String(e)}`);
  }
  const stmts = tree.stmts ?? [];
  const walker = new Walker();
  if (stmts.length === 0) walker.raise('control');
  for (const s of stmts) {
    if (!s.stmt) walker.raise('unknown', 'empty statement node');
    else walker.statement(s.stmt);
  }
  return {
    class: rankToClass(walker.rank),
    statements: [...walker.statements],
    tables: [...walker.tables],
    functions: [...walker.functions],
    prepares: walker.prepares,
    executes: walker.executes,
    deallocates: walker.deallocates,
    literalSensitive: walker.literalSensitive,
    reason: walker.reason,
    statementCount: stmts.length,
  };
}
