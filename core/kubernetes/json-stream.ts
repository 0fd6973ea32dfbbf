import { err, ok, type Result } from '../result';

/**
 * Splits a JSON response body, arriving in chunks split anywhere, into the pieces the masker decodes
 * one at a time, so that memory stays bounded by one object whatever the response's size:
 * - a document: a list's items (`*List`, `items`) and a Table's rows are handed over one by one, and
 *   the rest of the document (kind, apiVersion, metadata) as its envelope; any other document whole;
 * - a watch stream: one event at a time (the API server writes concatenated JSON objects).
 * I/O-free: bytes in, decoded values out. Structural bytes are ASCII, so a chunk may split a UTF-8
 * sequence anywhere without harm.
 */

/** Largest single object, list item, Table row, watch event or list envelope decoded (etcd's default limit is 1.5 MiB per object). */
export const MAX_KUBE_OBJECT_BYTES = 8 * 1024 * 1024;

export type JsonStreamRefusal = { readonly code: 'too-large' | 'malformed'; readonly message: string };

/** What the splitter hands over; the masker answers with the text to emit for it. */
export interface JsonPieces {
  /** A whole document (or watch event). */
  whole(doc: unknown): string;
  /** The envelope of a streamed list or Table (without its items or rows), before the first item. */
  envelope(env: Record<string, unknown>, key: StreamedKey): string;
  /** One item or row. */
  item(item: unknown, env: Record<string, unknown>, key: StreamedKey, first: boolean): string;
  /** After the last item or row. */
  close(): string;
}

export type StreamedKey = 'items' | 'rows';

const enum B {
  Quote = 0x22,
  Backslash = 0x5c,
  OpenBrace = 0x7b,
  CloseBrace = 0x7d,
  OpenBracket = 0x5b,
  CloseBracket = 0x5d,
  Comma = 0x2c,
  Space = 0x20,
  Tab = 0x09,
  Newline = 0x0a,
  Return = 0x0d,
}

const isSpace = (b: number): boolean => b === B.Space || b === B.Newline || b === B.Return || b === B.Tab;

type Mode = 'before' | 'head' | 'items' | 'tail' | 'done';

/** The members of a list envelope or Table that are streamed, and the kinds they belong to. */
function streamedKeyOf(key: string, env: Record<string, unknown>): StreamedKey | undefined {
  const kind = env.kind;
  if (typeof kind !== 'string') return undefined;
  if (key === 'items' && kind.endsWith('List')) return 'items';
  if (key === 'rows' && kind === 'Table') return 'rows';
  return undefined;
}

/**
 * One JSON body (or a watch stream when `values` is set) through `pieces`. `push` returns the text to
 * send on now; after a refusal every call returns it again (the caller ends the response).
 */
export class JsonStreamSplitter {
  private mode: Mode = 'before';
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** The bytes of the piece being collected, before the current chunk. */
  private parts: Buffer[] = [];
  private size = 0;
  // Document head: where the current top-level key starts in the head, what it was, whether a key comes next.
  private keyStart = -1;
  /** The member name being read: its earlier chunks' bytes, and where it starts in the current chunk. */
  private keyParts: Buffer[] = [];
  private keyFrom = 0;
  private lastKey: string | undefined;
  private expectKey = false;
  private envelope: Record<string, unknown> = {};
  private streamed: StreamedKey = 'items';
  private first = true;
  /** Between items: a comma or the closing bracket comes next. */
  private afterItem = false;
  private failure: JsonStreamRefusal | undefined;

  constructor(
    private readonly pieces: JsonPieces,
    private readonly values: boolean,
    private readonly maxPieceBytes = MAX_KUBE_OBJECT_BYTES,
  ) {}

  push(chunk: Buffer): Result<string, JsonStreamRefusal> {
    if (this.failure) return err(this.failure);
    let out = '';
    // Where the piece being collected starts in this chunk (-1: not collecting).
    let start = this.collecting() ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
          continue;
        }
        // Strings are most of the bytes: skip to the next quote or backslash in a tight loop.
        while (i < chunk.length && chunk[i] !== B.Quote && chunk[i] !== B.Backslash) i++;
        if (i === chunk.length) break;
        if (chunk[i] === B.Backslash) this.escaped = true;
        else {
          this.inString = false;
          if (this.tracksKeys()) {
            const key = this.decodeKey(chunk, i);
            if (key === undefined) return this.fail('malformed', 'the response has an invalid member name');
            this.lastKey = key;
            this.expectKey = false;
          }
        }
        continue;
      }
      const b = chunk[i] as number;
      if (this.mode === 'before' || this.mode === 'done' || (this.mode === 'items' && this.depth === 2)) {
        if (isSpace(b)) continue;
        if (this.mode === 'items' && this.afterItem) {
          this.afterItem = b !== B.Comma;
          if (b === B.Comma) continue;
        }
        if (this.mode === 'items' && b === B.CloseBracket && (this.first || this.afterItem)) {
          this.depth = 1;
          this.mode = 'tail';
          start = i + 1;
          continue;
        }
        if (b !== B.OpenBrace || this.mode === 'done' || this.afterItem) return this.fail('malformed', 'the response is not a JSON object where one was expected');
        this.mode = this.mode === 'items' ? 'items' : 'head';
        this.depth++;
        start = i;
        this.parts = [];
        this.size = 0;
        if (this.depth === 1) this.expectKey = true;
        continue;
      }
      switch (b) {
        case B.Quote:
          this.inString = true;
          if (this.tracksKeys()) {
            this.keyStart = this.size + (i - start);
            this.keyFrom = i;
            this.keyParts = [];
          }
          break;
        case B.Comma:
          if (this.depth === 1 && this.mode === 'head') this.expectKey = true;
          break;
        case B.OpenBracket:
        case B.OpenBrace:
          if (b === B.OpenBracket && this.mode === 'head' && this.depth === 1 && !this.values) {
            const streamed = this.startItems(chunk, start, i);
            if (!streamed.ok) return streamed;
            if (streamed.value !== undefined) {
              out += streamed.value;
              start = -1;
              this.depth = 2;
              continue;
            }
          }
          this.depth++;
          break;
        case B.CloseBracket:
        case B.CloseBrace:
          this.depth--;
          if (this.depth < 0) return this.fail('malformed', 'the response has an unbalanced bracket');
          if (this.mode === 'items' && this.depth === 2) {
            const item = this.decode(this.take(chunk, start, i + 1), true);
            if (!item.ok) return item;
            out += this.pieces.item(item.value, this.envelope, this.streamed, this.first);
            this.first = false;
            this.afterItem = true;
            start = -1;
          } else if (this.depth === 0) {
            const piece = this.take(chunk, start, i + 1);
            if (this.mode === 'tail') {
              if (piece.toString('utf8').trim() !== '}') return this.fail('malformed', `the response has members after its ${this.streamed}`);
              out += this.pieces.close();
            } else {
              const doc = this.decode(piece, true);
              if (!doc.ok) return doc;
              out += this.pieces.whole(doc.value);
            }
            this.mode = this.values ? 'before' : 'done';
            start = -1;
          }
          break;
        default:
      }
    }
    if (this.inString && this.tracksKeys()) {
      this.keyParts.push(chunk.subarray(this.keyFrom));
      this.keyFrom = 0;
    }
    if (start >= 0 && this.collecting()) {
      this.parts.push(chunk.subarray(start));
      this.size += chunk.length - start;
      if (this.size > this.maxPieceBytes) return this.fail('too-large', `an object in the response is over ${this.maxPieceBytes} bytes`);
    }
    return ok(out);
  }

  /** The end of the body: refused when it stops inside a value (an upstream cut mid-object). */
  end(): Result<string, JsonStreamRefusal> {
    if (this.failure) return err(this.failure);
    if (this.mode === 'done' || this.mode === 'before') return ok('');
    return this.fail('malformed', 'the response ended inside a JSON value');
  }

  /** Top-level member names matter only in a document's head (to find its items). */
  private tracksKeys(): boolean {
    return this.mode === 'head' && this.depth === 1 && this.expectKey && !this.values;
  }

  private collecting(): boolean {
    return this.mode === 'head' || this.mode === 'tail' || (this.mode === 'items' && this.depth > 2);
  }

  private fail(code: JsonStreamRefusal['code'], message: string): { ok: false; error: JsonStreamRefusal } {
    this.failure = { code, message: `twokey: ${message}` };
    return err(this.failure);
  }

  /** The collected bytes plus `chunk[start, end)`, and collection reset. */
  private take(chunk: Buffer, start: number, end: number): Buffer {
    const piece = this.parts.length === 0 ? chunk.subarray(start, end) : Buffer.concat([...this.parts, chunk.subarray(start, end)]);
    this.parts = [];
    this.size = 0;
    return piece;
  }

  /** `capped`: a piece of the body, bounded here (the size is checked per chunk while collecting, and once whole). */
  private decode(piece: Buffer, capped = false): Result<unknown, JsonStreamRefusal> {
    if (capped && piece.length > this.maxPieceBytes) return this.fail('too-large', `an object in the response is over ${this.maxPieceBytes} bytes`);
    try {
      return ok(JSON.parse(piece.toString('utf8')));
    } catch {
      return this.fail('malformed', 'the response is not valid JSON');
    }
  }

  /** The member name that ends at `quoteAt` (its bytes only: a head with many members is not copied per member). */
  private decodeKey(chunk: Buffer, quoteAt: number): string | undefined {
    const bytes = this.keyParts.length === 0 ? chunk.subarray(this.keyFrom, quoteAt + 1) : Buffer.concat([...this.keyParts, chunk.subarray(this.keyFrom, quoteAt + 1)]);
    this.keyParts = [];
    if (!bytes.includes(B.Backslash)) return bytes.toString('utf8', 1, bytes.length - 1);
    try {
      const key: unknown = JSON.parse(bytes.toString('utf8'));
      return typeof key === 'string' ? key : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * At `[` after a top-level key: when the key is a list's `items` or a Table's `rows`, decodes what
   * came before as the envelope and switches to streaming items (returns the text to emit); otherwise
   * the document stays whole (returns undefined).
   */
  private startItems(chunk: Buffer, start: number, bracketAt: number): Result<string | undefined, JsonStreamRefusal> {
    if (this.lastKey !== 'items' && this.lastKey !== 'rows') return ok(undefined);
    const head = Buffer.concat([...this.parts, chunk.subarray(start, bracketAt)]);
    const members = head.subarray(0, this.keyStart).toString('utf8').trimEnd().replace(/,$/, '');
    const env = this.decode(Buffer.from(`${members}}`));
    if (!env.ok) return env;
    const envelope = env.value as Record<string, unknown>;
    const streamed = streamedKeyOf(this.lastKey, envelope);
    if (streamed === undefined) return ok(undefined);
    // A second `items` would be the one a client keeps: refuse rather than pick.
    if (streamed in envelope) return this.fail('malformed', `the response names ${streamed} twice`);
    this.envelope = envelope;
    this.streamed = streamed;
    this.mode = 'items';
    this.parts = [];
    this.size = 0;
    return ok(this.pieces.envelope(envelope, streamed));
  }
}
