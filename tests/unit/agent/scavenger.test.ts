import { PassThrough } from 'node:stream';
import { Scavenger, minorCollection, type MinorCollection } from '../../../agent/net/scavenger';

describe('the relay scavenger', () => {
  it('runs one young-generation collection per budget of bytes read, however the reads are cut', () => {
    const calls: Array<{ type: 'minor' }> = [];
    const scavenger = new Scavenger((options) => calls.push(options), 1000);
    const socket = new PassThrough();
    scavenger.watch(socket);
    socket.write(Buffer.alloc(999));
    expect(calls).toEqual([]);
    socket.write(Buffer.alloc(1));
    expect(calls).toEqual([{ type: 'minor' }]);
    for (let i = 0; i < 10; i++) socket.write(Buffer.alloc(250));
    expect(calls).toHaveLength(3);
  });

  it('counts every watched stream toward the same budget', () => {
    let collections = 0;
    const scavenger = new Scavenger(() => collections++, 1000);
    const caller = new PassThrough();
    const upstream = new PassThrough();
    scavenger.watch(caller);
    scavenger.watch(upstream);
    caller.write(Buffer.alloc(600));
    upstream.write(Buffer.alloc(600));
    expect(collections).toBe(1);
  });

  it('leaves a stream alone when no collection is available', () => {
    const socket = new PassThrough();
    new Scavenger(undefined, 1).watch(socket);
    expect(socket.listenerCount('data')).toBe(0);
  });

  it('reaches V8 collection without --expose-gc on the command line', async () => {
    const collect = minorCollection() as MinorCollection;
    expect(typeof collect).toBe('function');
    const garbageBytes = 256 * 64 * 1024;
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 256; i++) Buffer.allocUnsafe(64 * 1024).fill(1);
    // Freed backing stores are counted off by V8's sweeper, which may finish after the call returns.
    let after = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 50 && after >= before + garbageBytes / 2; i++) {
      collect({ type: 'minor' });
      await new Promise((resolve) => setTimeout(resolve, 10));
      after = process.memoryUsage().arrayBuffers;
    }
    expect(after).toBeLessThan(before + garbageBytes / 2);
  });
});
