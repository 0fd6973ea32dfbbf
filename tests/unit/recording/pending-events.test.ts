import { PendingEvents } from '../../../agent/recording/pending-events';

/** Events as a spool or the recorder's worker would compress them: the whole lines now. */
const waiting = (events: PendingEvents): string => events.whole().toString('utf8');

describe('pending events (whole JSON lines waiting for compression)', () => {
  it('never hands over half an event: a line its writer left unfinished is dropped', () => {
    const events = new PendingEvents(1024, () => undefined, () => undefined);
    events.appendJson('{"e":"one"}');
    // A writer that threw half way through its event.
    events.beginLine().json('{"half":');
    events.appendJson('{"e":"two"}');
    events.beginLine().json('{"half again":');
    expect(waiting(events)).toBe('{"e":"one"}\n{"e":"two"}\n');
  });

  it('ends a line held open as it stands when another line begins or the events are taken, and resumes it only while held', () => {
    const events = new PendingEvents(1024, () => undefined, () => undefined);
    const close = Buffer.from('}');
    events.beginLine().json('{"e":"held","n":1');
    events.holdLine(close);
    events.resumeLine()?.json(',"more":true');
    events.holdLine(close);
    // Another line: the held one is ended with its closing bytes first, and can no longer be resumed.
    events.appendJson('{"e":"between"}');
    expect(events.resumeLine()).toBeUndefined();
    events.beginLine().json('{"e":"held at the end"');
    events.holdLine(close);
    expect(waiting(events)).toBe('{"e":"held","n":1,"more":true}\n{"e":"between"}\n{"e":"held at the end"}\n');
  });
});
