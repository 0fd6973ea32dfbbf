import { decodeAgentMessage, decodeControlMessage, encodeFrame, MAX_FRAME_BYTES } from '../../../core/tunnel/messages';

describe('tunnel frames', () => {
  it('round-trips a hello', () => {
    const frame = encodeFrame({ type: 'hello', v: 1, agentVersion: '0.1.0', targets: ['demo-pg'] });
    expect(frame.ok).toBe(true);
    if (frame.ok) expect(decodeAgentMessage(frame.value)).toEqual({ ok: true, value: { type: 'hello', v: 1, agentVersion: '0.1.0', targets: ['demo-pg'] } });
  });

  it('refuses to send a frame over 32 KB', () => {
    const frame = encodeFrame({ type: 'policy', v: 1, version: 1, document: { big: 'x'.repeat(MAX_FRAME_BYTES) } });
    expect(!frame.ok && frame.error.code).toBe('frame-too-large');
  });

  it.each([
    ['not JSON', '{'],
    ['no type', '{"v":1}'],
    ['unknown type', '{"type":"rm -rf","v":1}'],
    ['wrong version', '{"type":"policy.get","v":2}'],
    ['extra field', '{"type":"policy.get","v":1,"admin":true}'],
    ['wrong field type', '{"type":"hello","v":1,"agentVersion":"1","targets":"demo-pg"}'],
  ])('rejects a malformed agent frame: %s', (_name, text) => {
    const decoded = decodeAgentMessage(text);
    expect(!decoded.ok && decoded.error.code).toBe('malformed-frame');
  });

  it('rejects an oversized incoming frame before parsing it', () => {
    const decoded = decodeControlMessage(Buffer.alloc(MAX_FRAME_BYTES + 1, 0x20));
    expect(!decoded.ok && decoded.error.code).toBe('frame-too-large');
  });
});
