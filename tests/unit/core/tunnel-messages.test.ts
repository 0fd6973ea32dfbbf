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

  it('round-trips a part of the registered SSH keys and refuses a key without a SHA256 fingerprint', () => {
    const key = { fingerprint: `SHA256:${'A'.repeat(43)}`, keyType: 'ssh-ed25519' as const, expiresAt: 1, issuer: 'https://i', subject: 'alice', name: 'Alice', groups: ['support'] };
    const frame = encodeFrame({ type: 'ssh.keys', v: 1, asOf: 5, part: 0, parts: 1, keys: [key] });
    expect(frame.ok && decodeControlMessage(frame.value)).toEqual({ ok: true, value: { type: 'ssh.keys', v: 1, asOf: 5, part: 0, parts: 1, keys: [key] } });
    const bad = decodeControlMessage(JSON.stringify({ type: 'ssh.keys', v: 1, asOf: 5, part: 0, parts: 1, keys: [{ ...key, fingerprint: 'MD5:aa' }] }));
    expect(!bad.ok && bad.error.code).toBe('malformed-frame');
    const dsa = decodeControlMessage(JSON.stringify({ type: 'ssh.keys', v: 1, asOf: 5, part: 0, parts: 1, keys: [{ ...key, keyType: 'ssh-dss' }] }));
    expect(dsa.ok).toBe(false);
  });
});
