/**
 * The line protocol's codec: bytes in, lines out, I/O-free. A line ends at `\n` (a `\r` before it is
 * dropped); a line longer than its cap is an error, not buffered without bound.
 */
export const MAX_LINE_BYTES = 4096;

export type LineFramerError = { readonly kind: 'too-long'; readonly bytes: number };

export class LineFramer {
  private carry: Buffer = Buffer.alloc(0);

  constructor(private readonly maxLineBytes = MAX_LINE_BYTES) {}

  /** Every whole line in what arrived so far, in order; the error when a line runs past the cap. */
  push(chunk: Buffer, each: (line: string) => void): LineFramerError | undefined {
    let data = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    for (let nl = data.indexOf(0x0a); nl !== -1; nl = data.indexOf(0x0a)) {
      if (nl > this.maxLineBytes) return { kind: 'too-long', bytes: nl };
      const end = nl > 0 && data[nl - 1] === 0x0d ? nl - 1 : nl;
      each(data.toString('utf8', 0, end));
      data = data.subarray(nl + 1);
    }
    if (data.length > this.maxLineBytes) return { kind: 'too-long', bytes: data.length };
    this.carry = Buffer.from(data);
    return undefined;
  }
}

/** What a line asks for. The first word is the verb; unknown verbs are `unknown` (treated as the most privileged class). */
export type LineRequest =
  | { readonly verb: 'AUTH'; readonly token: string }
  | { readonly verb: 'ECHO'; readonly text: string }
  | { readonly verb: 'GET'; readonly key: string }
  | { readonly verb: 'SET'; readonly key: string; readonly value: string }
  | { readonly verb: 'REASON'; readonly text: string }
  | { readonly verb: 'QUIT' }
  | { readonly verb: 'unknown'; readonly line: string };

export function parseLine(line: string): LineRequest {
  const space = line.indexOf(' ');
  const verb = space === -1 ? line : line.slice(0, space);
  const rest = space === -1 ? '' : line.slice(space + 1);
  switch (verb) {
    case 'AUTH':
      return { verb, token: rest };
    case 'ECHO':
      return { verb, text: rest };
    case 'GET':
      return rest && !rest.includes(' ') ? { verb, key: rest } : { verb: 'unknown', line };
    case 'SET': {
      const at = rest.indexOf(' ');
      return at > 0 ? { verb, key: rest.slice(0, at), value: rest.slice(at + 1) } : { verb: 'unknown', line };
    }
    case 'REASON':
      return { verb, text: rest };
    case 'QUIT':
      return { verb };
    default:
      return { verb: 'unknown', line };
  }
}
