import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { oneLine, plainVisible } from '../../core/approval/visible-text';
import { decodeChunk, verifyChain } from '../../core/recording/chunk';
import { parse, UsageError } from '../args';
import { durationSeconds } from '../duration';
import { addPage, PAGE_OPTIONS, tellNext } from '../page-options';
import { apiCall, clientOptions, CONTROL_PLANE_OPTIONS, type ClientOptions } from '../control-plane-client';

/** `recording get` and `verify` exit with this code when a recording was altered or is incomplete. */
export const EXIT_TAMPERED = 3;
const DOWNLOAD_TIMEOUT_MS = 60_000;

interface SessionView {
  sessionId: string;
  target: string;
  user: string;
  identity: { name: string; email?: string };
  startedAt: string;
  endedAt?: string;
  status: string;
  chunkCount?: number;
  finalDigest?: string;
}

/** What `recording get -o FILE` keeps: the session as the control plane recorded it, the manifest and the chunks. */
interface Download {
  twokey: 'recording-download';
  v: 1;
  session: SessionView;
  manifest: { chunks: { seq: number; sha256: string }[] };
  chunks: string[];
}

const common = CONTROL_PLANE_OPTIONS;
const client = clientOptions;

function sinceToIso(since: string | undefined): string | undefined {
  if (!since) return undefined;
  return new Date(Date.now() - durationSeconds(since, '--since') * 1000).toISOString();
}

/** `twokey sessions list [--target T] [--user U] [--since 1h] [--limit N] [--next TOKEN] [--json]` (auditors). */
export async function sessionsCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const usage = 'usage: twokey sessions list [--target T] [--user U] [--since 1h] [--limit N] [--next TOKEN] [--json]';
  if (sub !== 'list') throw new UsageError(usage);
  const { values } = parse(rest, { ...common, target: { type: 'string' }, user: { type: 'string' }, since: { type: 'string' }, ...PAGE_OPTIONS });
  const q = addPage(new URLSearchParams(), values, usage);
  if (values.target) q.set('target', values.target);
  if (values.user) q.set('user', values.user);
  const from = sinceToIso(values.since);
  if (from) q.set('from', from);
  const { json } = await apiCall(client(values), 'GET', `/sessions${q.size ? `?${q}` : ''}`);
  if (values.json) {
    console.log(JSON.stringify(json, null, 2));
    return 0;
  }
  const page = json as { sessions: SessionView[]; next?: string };
  console.log(['SESSION'.padEnd(36), 'TARGET'.padEnd(12), 'USER'.padEnd(20), 'STARTED'.padEnd(24), 'STATUS'.padEnd(10), 'CHUNKS'].join(' '));
  for (const s of page.sessions) {
    console.log([s.sessionId.padEnd(36), s.target.padEnd(12), oneLine(s.identity.email ?? s.user, 40).padEnd(20), s.startedAt.padEnd(24), s.status.padEnd(10), String(s.chunkCount ?? '-')].join(' '));
  }
  tellNext('twokey sessions list ...', page.next);
  return 0;
}

async function download(options: ClientOptions, sessionId: string, progress: boolean): Promise<Download> {
  type Page = { session: SessionView; manifestUrl: string; chunks: { seq: number; url: string }[]; nextSeq?: number };
  const page = async (fromSeq: number): Promise<Page> =>
    (await apiCall(options, 'GET', `/sessions/${encodeURIComponent(sessionId)}/recording?from=${fromSeq}`)).json as Page;
  const fetchBytes = async (url: string): Promise<Buffer> => {
    const res = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`download failed: HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
  let links = await page(0);
  const manifest = JSON.parse((await fetchBytes(links.manifestUrl)).toString('utf8')) as Download['manifest'];
  const total = links.session.chunkCount ?? 0;
  const chunks: string[] = [];
  // The control plane gives the URLs a page at a time; each page's URLs are fetched before they expire.
  for (;;) {
    for (const c of links.chunks) {
      chunks.push((await fetchBytes(c.url)).toString('base64'));
      if (progress) process.stderr.write(`\rdownloading ${sessionId}: ${'#'.repeat(Math.round((chunks.length / Math.max(total, 1)) * 30)).padEnd(30, '.')} ${chunks.length}/${total}`);
    }
    if (links.nextSeq === undefined) break;
    if (links.nextSeq !== chunks.length) throw new Error(`the recording's pages do not follow on (next ${links.nextSeq} after ${chunks.length} chunks)`);
    links = await page(links.nextSeq);
  }
  if (progress && chunks.length) process.stderr.write('\n');
  return { twokey: 'recording-download', v: 1, session: links.session, manifest, chunks };
}

/** Checks a download against the session's sealed digest; prints what is wrong and returns the exit code. */
function verify(d: Download): number {
  const session = d.session;
  if (!session.finalDigest || session.chunkCount === undefined) {
    console.error(`session ${session.sessionId} has no sealed recording (status ${session.status})`);
    return EXIT_TAMPERED;
  }
  const result = verifyChain(
    d.chunks.map((c) => Buffer.from(c, 'base64')),
    { sessionId: session.sessionId, finalDigest: session.finalDigest, chunkCount: session.chunkCount, digests: d.manifest.chunks.map((c) => c.sha256) },
  );
  if (!result.ok) {
    console.error(`recording ${session.sessionId} does not verify: chunk ${result.error.chunk}: ${result.error.reason}`);
    return EXIT_TAMPERED;
  }
  console.error(`verified: ${session.chunkCount} chunk(s), digest ${session.finalDigest}${session.status === 'incomplete' ? ' (the session is marked incomplete)' : ''}`);
  return 0;
}

/** `twokey recording get <id> [-o FILE]` and `twokey recording verify FILE`. */
export async function recordingCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'get') {
    const { values, positionals } = parse(rest, { ...common, output: { type: 'string', short: 'o' } });
    const id = positionals[0];
    if (!id) throw new UsageError('usage: twokey recording get <session-id> [-o FILE]');
    const d = await download(client(values), id, process.stderr.isTTY === true);
    const code = verify(d);
    if (values.output) await writeFile(values.output, JSON.stringify(d), { mode: 0o600 });
    return code;
  }
  if (sub === 'verify') {
    const { values, positionals } = parse(rest, common);
    const file = positionals[0];
    if (!file) throw new UsageError('usage: twokey recording verify FILE');
    const d = JSON.parse(await readFile(file, 'utf8')) as Download;
    // The digest to trust is the control plane's, not the one inside the file.
    const current = await apiCall(client(values), 'GET', `/sessions/${encodeURIComponent(d.session.sessionId)}`).catch(() => undefined);
    if (current) d.session = current.json as SessionView;
    else console.error('the control plane is not reachable: checking the file against the digest it carries');
    return verify(d);
  }
  throw new UsageError('usage: twokey recording get|verify');
}

/** `twokey replay <session-id> [--speed N]`: a Postgres, Kubernetes API or MCP session as a transcript with timing; a terminal session (SSH, kubectl exec) played back. */
export async function replayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...common, speed: { type: 'string', default: '0' } });
  const id = positionals[0];
  if (!id) throw new UsageError('usage: twokey replay <session-id> [--speed N]');
  const speed = Number(values.speed);
  const d = await download(client(values), id, false);
  const code = verify(d);
  if (code !== 0) return code;
  let first: number | undefined;
  let last: number | undefined;
  let castClock: number | undefined;
  const prompt = { db: 'sql' };
  for (const [i, c] of d.chunks.entries()) {
    const decoded = decodeChunk(Buffer.from(c, 'base64'), i);
    if (!decoded.ok) return EXIT_TAMPERED;
    if (decoded.value.header.format === 'asciicast') {
      castClock = await playAsciicast(decoded.value.body.toString('utf8'), speed, castClock);
      continue;
    }
    for (const line of decoded.value.body.toString('utf8').split('\n')) {
      if (!line) continue;
      const e = JSON.parse(line) as Record<string, unknown>;
      const at = typeof e.t === 'string' ? Date.parse(e.t) : undefined;
      if (at !== undefined) {
        first ??= at;
        if (speed > 0 && last !== undefined) await sleep(Math.min(5_000, (at - last) / speed));
        last = at;
      }
      const stamp = at !== undefined && first !== undefined ? `[+${((at - first) / 1000).toFixed(3)}s] ` : '';
      if (e.e === 'session.start' && typeof e.database === 'string' && e.database) prompt.db = e.database;
      // Callers wrote the statements, rows and names: escape sequences must not drive the auditor's terminal.
      process.stdout.write(plainVisible(transcriptLine(e, stamp, prompt.db), true));
    }
  }
  return 0;
}

/**
 * Terminal sessions: asciicast v2 lines played back as they were shown (output to stdout at the
 * recorded pace divided by `speed`, or at once with speed 0); the header, markers and input go to stderr.
 * Returns the time of the last event, so that playback continues across chunks.
 */
async function playAsciicast(body: string, speed: number, last: number | undefined): Promise<number | undefined> {
  let previous = last;
  for (const line of body.split('\n')) {
    if (!line) continue;
    const event = JSON.parse(line) as unknown;
    if (!Array.isArray(event)) {
      const header = event as { title?: string; width?: number; height?: number };
      process.stderr.write(`-- ${header.title ?? 'terminal session'} (${String(header.width)}x${String(header.height)})\n`);
      continue;
    }
    const [seconds, code, data] = event as [number, string, string];
    if (speed > 0 && previous !== undefined) await sleep(Math.min(5_000, ((seconds - previous) * 1000) / speed));
    previous = seconds;
    if (code === 'o') process.stdout.write(data);
    // Keystrokes (recorded when the policy asks) on a line of their own: control keys shown as escapes, never sent to the auditor's terminal.
    else if (code === 'i') process.stderr.write(`\n-- [${seconds.toFixed(3)}s] typed ${plainVisible(data)}\n`);
    else if (code === 'm') process.stderr.write(`\n-- [${seconds.toFixed(3)}s] ${data}\n`);
  }
  return previous;
}

function transcriptLine(e: Record<string, unknown>, stamp: string, database: string): string {
  switch (e.e) {
    case 'session.start': {
      const who = e.identity as { name: string; email?: string };
      return `${stamp}-- ${who.name} <${who.email ?? ''}> connected to ${String(e.target)} from ${String(e.client)} (${String(e.application ?? 'unknown client')})\n`;
    }
    case 'statement': {
      const said = `${stamp}${database}=> ${String(e.text)}\n${stamp}-- ${String(e.class)}, ${String(e.decision)}${e.rule ? ` by rule ${String(e.rule)}` : ''}${e.decision === 'deny' && e.reason ? `: ${String(e.reason)}` : ''}\n`;
      // A statement with its rows and result folded into its line (see agent/recording/pg-recorder.ts).
      const rows = Array.isArray(e.v) ? (e.v as unknown[]).map((v) => transcriptLine({ e: 'row', v }, stamp, database)).join('') : '';
      const result = typeof e.result === 'object' && e.result !== null ? transcriptLine({ ...(e.result as Record<string, unknown>), e: 'result' }, stamp, database) : '';
      return said + rows + result;
    }
    case 'row':
      return `  ${(e.v as (string | null)[]).map((v) => v ?? 'NULL').join(' | ')}\n`;
    case 'result':
      return `${stamp}${(e.tags as string[]).join(', ') || '(no result)'}${Number(e.rowsNotRecorded) ? ` (+${String(e.rowsNotRecorded)} rows not recorded)` : ''} in ${String(e.durationMs)} ms\n`;
    case 'error':
    case 'notice':
      return `${stamp}${e.e === 'error' ? 'ERROR' : 'NOTICE'}:  ${String(e.message)}\n`;
    // Kubernetes API sessions (agent/kubernetes): a decision per request, then the request's outcome.
    case 'decision':
      return `${stamp}kubectl> ${String(e.text)}\n${stamp}-- ${String(e.class)}, ${String(e.decision)}${e.rule ? ` by rule ${String(e.rule)}` : ''}${e.decision === 'deny' && e.reason ? `: ${String(e.reason)}` : ''}\n`;
    case 'request':
      return `${stamp}${e.verb ? `${String(e.verb)} ` : ''}${String(e.method)} ${String(e.path)} -> ${String(e.status)} in ${String(e.latencyMs)} ms${e.bytes !== undefined ? `, ${String(e.bytes)} bytes` : ''}${e.summary ? ` (${String(e.summary)})` : ''}${e.error ? ` [${String(e.error)}]` : ''}\n`;
    case 'held':
      return `${stamp}-- held as request ${String(e.requestId)}; the reviewer read:\n${String(e.review)}\n`;
    case 'terminal':
      return `${stamp}-- terminal session ${String(e.sessionId)} (twokey replay ${String(e.sessionId)})\n`;
    case 'tool': {
      // An MCP tool call (agent/mcp/mcp-session.ts): what the AI agent asked, what twokey decided, and a summary of the answer.
      const said = `${stamp}mcp> ${String(e.tool)} ${JSON.stringify(e.arguments ?? {})}\n`;
      return `${said}${stamp}-- ${String(e.decision)}${e.ok ? '' : ', refused'}: ${String(e.summary)} in ${String(e.durationMs)} ms\n`;
    }
    case 'approval':
      return `${stamp}-- approval ${String(e.requestId)}: ${String(e.outcome)}${(e.reviewers as string[]).length ? ` by ${(e.reviewers as string[]).join(', ')}` : ''}\n`;
    case 'session.end':
      return `${stamp}-- session ended (${String(e.reason)})\n`;
    case 'decision':
      // Another protocol's action (an SSH command, an SFTP request, a forward): its text, then what was decided.
      return `${stamp}${String(e.text)}\n${stamp}-- ${String(e.class)}, ${String(e.decision)}${e.rule ? ` by rule ${String(e.rule)}` : ''}${e.reason ? `: ${String(e.reason)}` : ''}\n`;
    default:
      return '';
  }
}
