import { PassThrough } from 'node:stream';
import { BytePuller } from '../../../agent/ssh/scp/byte-puller';
import { MAX_SCP_ENTRIES, MAX_SCP_RECORD_BYTES, serveScpSink, type PathKind, type ScpSinkDeps } from '../../../agent/ssh/scp/scp-sink';
import { parseScpSinkCommand, runsScpSink, type ScpSinkCommand } from '../../../core/ssh/scp-sink-command';

describe('recognizing the command of an scp upload', () => {
  it.each([
    ['scp -t /srv/a.txt', { path: '/srv/a.txt', directory: false, recursive: false }],
    ['scp -v -r -p -d -t -- /srv/-odd', { path: '/srv/-odd', directory: true, recursive: true }],
    ['scp -dt "/srv/with space"', { path: '/srv/with space', directory: true, recursive: false }],
  ])('reads %s', (command, expected) => {
    expect(parseScpSinkCommand(command)).toEqual(expected);
  });

  it.each([
    'scp -f /srv/a.txt',
    'scp -t /a /b',
    'scp -t $HOME/x',
    'scp -t /x; rm -rf /',
    'FOO=1 scp -t /x',
    'scp -t /x > /y',
    'scp -t -z /x',
    '/usr/bin/scp -t /x',
    'scp -t',
    'scp -t "/x',
  ])('leaves %s to the command classifier', (command) => {
    expect(parseScpSinkCommand(command)).toBeUndefined();
  });
});

describe('finding scp\'s sink among the commands a line runs', () => {
  it.each(['scp -t /x', 'scp -rt /x', '/usr/bin/scp -t /x', '/bin/scp -d -t /x', 'scp -S prog -t /x', 'scp -i -t /x', 'scp $X /x', 'scp {-t,/x}', 'scp -[t] /x'])('finds it in %s', (command) => {
    expect(runsScpSink(command)).toBe(true);
  });

  it.each(['scp -f /x', 'scp -f -- -t', 'scp -f /data/*.log', 'scp -rf /srv/$USER', 'scp /x host:/y', '/tmp/scp -t /x', 'rscp -t /x', 'nice scp -t /x'])('finds none in %s', (command) => {
    expect(runsScpSink(command)).toBe(false);
  });
});

interface Run {
  readonly status: number;
  readonly replies: string;
  readonly uploads: { path: string; content: string; mode: number }[];
  readonly dirs: string[];
}

const OK = '\0';
const sink = (over: Partial<ScpSinkCommand> = {}): ScpSinkCommand => ({ path: '/srv', directory: false, recursive: false, ...over });

/** Serves one scp stream (written in the given pieces, then ended) against a target where `/srv` is a directory. */
async function serve(pieces: readonly (string | Buffer)[], command = sink(), overrides: Partial<ScpSinkDeps> = {}): Promise<Run> {
  const stream = new PassThrough();
  let replies = '';
  const uploads: Run['uploads'] = [];
  const dirs: string[] = [];
  const kinds: Record<string, PathKind> = { '/srv': 'directory', '/srv/file': 'file' };
  const deps: ScpSinkDeps = {
    owner: 'ada',
    send: (bytes) => (replies += bytes.toString()),
    kind: async (path) => kinds[path] ?? 'missing',
    denied: (path) => (path.startsWith('/srv/etc') ? 'twokey: blocked' : undefined),
    mkdir: async (path) => {
      dirs.push(path);
      kinds[path] = 'directory';
      return undefined;
    },
    upload: async (path, content, mode) => {
      uploads.push({ path, content: content.toString(), mode });
      return undefined;
    },
    ...overrides,
  };
  const served = serveScpSink(new BytePuller(stream, 64), command, deps);
  for (const piece of pieces) stream.write(piece);
  stream.end();
  return { status: await served, replies, uploads, dirs };
}

describe('the scp sink the agent serves', () => {
  const upload = 'T1700000000 0 1700000000 0\nC0640 5 a.txt\nhello\0';

  it('keeps a file whose records and bytes are split at any point, and gives it to the write login whole', async () => {
    for (let cut = 0; cut <= upload.length; cut++) {
      const run = await serve([upload.slice(0, cut), upload.slice(cut)]);
      expect(run).toEqual({ status: 0, replies: OK.repeat(4), uploads: [{ path: '/srv/a.txt', content: 'hello', mode: 0o640 }], dirs: [] });
    }
  });

  it('keeps a file sent one byte at a time', async () => {
    const run = await serve([...upload].map((c) => Buffer.from(c, 'latin1')));
    expect(run.uploads).toEqual([{ path: '/srv/a.txt', content: 'hello', mode: 0o640 }]);
  });

  it('writes the one file at the path itself when the path is not a directory', async () => {
    const run = await serve(['C0644 2 other-name\nhi\0'], sink({ path: '/srv/new.txt' }));
    expect(run.uploads).toEqual([{ path: '/srv/new.txt', content: 'hi', mode: 0o644 }]);
  });

  it('creates directories sent with -r and puts their files inside', async () => {
    const run = await serve(['D0755 0 tree\nC0644 1 a\nA\0D0700 0 sub\nC0600 1 b\nB\0E\nE\nC0644 1 c\nC\0'], sink({ recursive: true }));
    expect(run.dirs).toEqual(['/srv/tree', '/srv/tree/sub']);
    expect(run.uploads.map((u) => u.path)).toEqual(['/srv/tree/a', '/srv/tree/sub/b', '/srv/c']);
    expect(run.status).toBe(0);
  });

  it('refuses a file the policy denies before its bytes, and goes on with the next', async () => {
    const run = await serve(['D0755 0 etc\n', 'C0644 1 ok\nK\0'], sink({ recursive: true }));
    expect(run.replies).toBe(`${OK}\x01twokey: blocked\n${OK}${OK}`);
    expect(run.uploads.map((u) => u.path)).toEqual(['/srv/ok']);
    expect(run.status).toBe(1);
  });

  it('refuses a file larger than an approval can hold at its record', async () => {
    const run = await serve(['C0644 99999999999 big\n']);
    expect(run.replies).toMatch(/^\0\x01twokey: \/srv\/big is larger than an approval can hold/);
    expect(run.uploads).toEqual([]);
  });

  it.each([
    ['a name with a slash', 'C0644 1 ../x\nx\0', /unsafe name/],
    ['a name that is ..', 'C0644 1 ..\nx\0', /unsafe name/],
    ['bytes that are not UTF-8', Buffer.concat([Buffer.from('C0644 1 '), Buffer.from([0xff]), Buffer.from('\nx\0')]), /not UTF-8/],
  ])('refuses %s', async (_label, stream, message) => {
    const run = await serve([stream]);
    expect(run.replies).toMatch(message);
    expect(run.uploads).toEqual([]);
    expect(run.status).toBe(1);
  });

  it.each([
    ['an unknown record', 'X whatever\n', /an scp record it does not understand/, true],
    ['a mode that is not octal', 'C0999 1 a\nx\0', /an scp record it does not understand/, true],
    ['a directory without -r', 'D0755 0 d\n', /a directory sent without -r/, false],
    ['a record without its end', `C0644 1 ${'n'.repeat(MAX_SCP_RECORD_BYTES)}`, /longer than/, true],
    ['a stream that ends inside a file', 'C0644 10 a\nshort', /ended inside a file/, true],
    ['a file longer than its record says', 'C0644 1 a\nxyz\0', /not followed by its zero byte/, true],
    ['too many files', 'C0644 0 a\n\0'.repeat(MAX_SCP_ENTRIES + 1), /more than 256 files/, true],
    ['nesting deeper than the cap', 'D0755 0 d\n'.repeat(40), /nested deeper/, true],
  ])('ends the upload on %s with an scp error line', async (_label, stream, message, recursive) => {
    const run = await serve([stream], sink({ recursive }));
    expect(run.status).toBe(1);
    expect(run.replies.split('\x01').at(-1)).toMatch(message);
    expect(run.replies.endsWith('\n')).toBe(true);
  });

  it('writes nothing when the source reports it could not read the file', async () => {
    const run = await serve(['C0644 1 a\nx\x01scp: a: read error\n']);
    expect(run.uploads).toEqual([]);
    expect(run.replies).toMatch(/was not written/);
  });

  it('passes a refusal from the review back as an scp error', async () => {
    const run = await serve([upload], sink(), { upload: async () => 'twokey: request 1 denied by bob' });
    expect(run.replies).toBe(`${OK}${OK}${OK}\x01twokey: request 1 denied by bob\n`);
    expect(run.status).toBe(1);
  });

  it('refuses a -d upload into a path that is not a directory, and a relative path', async () => {
    expect((await serve([], sink({ path: '/srv/file', directory: true }))).replies).toBe('\x01twokey: /srv/file is not a directory\n');
    expect((await serve([], sink({ path: 'rel' }))).replies).toBe('\x01twokey: changes over scp need an absolute path\n');
  });
});
