import type { PgSessionEvents } from '../postgres/events';
import type { SessionSpool } from './spool';
import type { RecordingService } from './uploader';

let lastMs = 0;
let lastIso = '';
/** ISO time, formatted at most once per millisecond (formatting costs more than the rest of an event). */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

/** A row event's JSON, straight from a DataRow (`buf[start..end)`, header included): no array, no object. */
function rowJson(buf: Buffer, start: number, end: number): string {
  let at = start + 5;
  const count = buf.readInt16BE(at);
  at += 2;
  let json = '{"e":"row","v":[';
  for (let i = 0; i < count && at + 4 <= end; i++) {
    const len = buf.readInt32BE(at);
    at += 4;
    if (i > 0) json += ',';
    if (len < 0) json += 'null';
    else {
      json += JSON.stringify(buf.toString('utf8', at, Math.min(end, at + len)));
      at += len;
    }
  }
  return `${json}]}`;
}

/** The tail of a statement event after its text. A session repeats the same one, so the last is kept. */
let lastTail = { protocol: '', cls: '', decision: '', rule: undefined as string | undefined, reason: undefined as string | undefined, tail: '' };
function statementTail(protocol: string, cls: string, decision: string, rule: string | undefined, reason: string | undefined): string {
  const l = lastTail;
  if (l.tail && l.protocol === protocol && l.cls === cls && l.decision === decision && l.rule === rule && l.reason === reason) return l.tail;
  const tail = JSON.stringify({ protocol, class: cls, decision, rule, reason }).replace(/^\{/, ',');
  lastTail = { protocol, cls, decision, rule, reason, tail };
  return tail;
}

/**
 * Postgres sessions as newline-delimited JSON events: start (identity, target, client, application),
 * statements (text, class, decision), rows as sent to the caller up to a cap per statement (then the
 * count beyond it), results, errors and notices, approvals, end.
 */
export function pgRecorder(service: RecordingService, target: string, settings: () => { mode: string; maxRowsPerStatement: number }): PgSessionEvents {
  const spools = new Map<string, { spool: SessionSpool; rows: number; cap: number }>();
  const t = isoNow;
  // Encoding waits until the proxy has written what it was doing (setImmediate runs after this I/O
  // round): recording work then overlaps with the client and the database instead of delaying them.
  const queue: (() => void)[] = [];
  let scheduled = false;
  const runQueue = (): void => {
    scheduled = false;
    for (const write of queue.splice(0)) {
      try {
        write();
      } catch {
        // One session's spool failing (its own onError reports it) must not cost the others their events.
      }
    }
  };
  const later = (write: () => void): void => {
    queue.push(write);
    if (!scheduled) {
      scheduled = true;
      setImmediate(runQueue);
    }
  };
  return {
    sessionStart(e) {
      const { mode, maxRowsPerStatement } = settings();
      if (mode === 'off') return;
      const identity = { subject: e.identity.subject, name: e.identity.name, email: e.identity.email, groups: [...e.identity.groups] };
      const spool = service.begin({ sessionId: e.sessionId, target, protocol: 'postgres', format: 'ndjson', identity, startedAt: e.at.toISOString() });
      spools.set(e.sessionId, { spool, rows: 0, cap: maxRowsPerStatement });
      spool.append({ t: e.at.toISOString(), e: 'session.start', sessionId: e.sessionId, target, identity, startupUser: e.startupUser, database: e.database, application: e.applicationName, client: e.clientAddress });
    },
    statement(e) {
      const s = spools.get(e.sessionId);
      if (!s) return;
      s.rows = 0;
      const at = t();
      const tail = statementTail(e.protocol, e.class, e.decision, e.rule, e.reason);
      later(() => s.spool.appendJson(`{"t":"${at}","e":"statement","text":${JSON.stringify(e.text)}${tail}`));
    },
    dataRow(sessionId, buf, start, end) {
      const s = spools.get(sessionId);
      if (!s) return;
      s.rows++;
      if (s.rows <= s.cap) later(() => s.spool.appendJson(rowJson(buf, start, end)));
    },
    cycleEnd(e) {
      const s = spools.get(e.sessionId);
      if (!s) return;
      const at = t();
      const rowsNotRecorded = Math.max(0, e.rowsSent - s.cap);
      const { commandTags, rowsSent, durationMs, errors } = e;
      later(() =>
        s.spool.appendJson(
          `{"t":"${at}","e":"result","tags":${JSON.stringify(commandTags)},"rows":${rowsSent},"rowsNotRecorded":${rowsNotRecorded},"durationMs":${durationMs},"errors":${errors.length ? JSON.stringify(errors) : '[]'}}`,
        ),
      );
      s.rows = 0;
    },
    serverMessage(e) {
      const s = spools.get(e.sessionId);
      const at = t();
      if (s) later(() => s.spool.append({ t: at, e: e.kind, code: e.fields.C, message: e.fields.M, detail: e.fields.D }));
    },
    approval(e) {
      const s = spools.get(e.sessionId);
      const at = t();
      if (s) later(() => s.spool.append({ t: at, e: 'approval', requestId: e.requestId, outcome: e.outcome, reviewers: e.reviewers }));
    },
    sessionEnd(e) {
      const s = spools.get(e.sessionId);
      if (!s) return;
      spools.delete(e.sessionId);
      later(() => {
        s.spool.append({ t: e.at.toISOString(), e: 'session.end', reason: e.reason });
        service.end(e.sessionId, true);
      });
    },
  };
}
