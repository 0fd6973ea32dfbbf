import { HeldUpload, MAX_HELD_UPLOAD_BYTES, MAX_HELD_UPLOADS_PER_CALLER_BYTES, MAX_HELD_UPLOADS_TOTAL_BYTES } from '../../../agent/ssh/sftp/held-upload';

describe('uploads the agent holds for approval', () => {
  it('assembles writes at their offsets, later ones over earlier ones', () => {
    const upload = new HeldUpload('/srv/a.txt', 'ada');
    expect(upload.write(0, Buffer.from('hello xxxxx'))).toBe('kept');
    expect(upload.write(6, Buffer.from('world'))).toBe('kept');
    expect(upload.content().toString()).toBe('hello world');
    upload.release();
  });

  it('refuses a write that starts past what was written (the file would get zeros there)', () => {
    const upload = new HeldUpload('/srv/a.txt', 'ada');
    expect(upload.write(6, Buffer.from('world'))).toBe('gap');
    expect(upload.write(0, Buffer.from('hello'))).toBe('kept');
    expect(upload.write(6, Buffer.from('world'))).toBe('gap');
    upload.release();
  });

  it('refuses a write past the per-upload limit, and past the limit of all uploads together until one is released', () => {
    const one = new HeldUpload('/a', 'ada');
    expect(one.write(MAX_HELD_UPLOAD_BYTES, Buffer.from('x'))).toBe('too-large');
    const chunk = Buffer.alloc(MAX_HELD_UPLOAD_BYTES);
    const uploads = Array.from({ length: MAX_HELD_UPLOADS_TOTAL_BYTES / MAX_HELD_UPLOAD_BYTES }, (_, i) => new HeldUpload(`/u${i}`, `caller-${i}`));
    for (const u of uploads) expect(u.write(0, chunk)).toBe('kept');
    const extra = new HeldUpload('/extra', 'someone-else');
    expect(extra.write(0, Buffer.from('x'))).toBe('too-large');
    uploads[0]?.release();
    expect(extra.write(0, Buffer.from('x'))).toBe('kept');
    for (const u of [...uploads, extra]) u.release();
  });

  it('refuses a caller past their share of held bytes while another caller still gets theirs', () => {
    const chunk = Buffer.alloc(MAX_HELD_UPLOAD_BYTES);
    const staller = Array.from({ length: Math.ceil(MAX_HELD_UPLOADS_PER_CALLER_BYTES / MAX_HELD_UPLOAD_BYTES) }, (_, i) => new HeldUpload(`/s${i}`, 'mallory'));
    const kept = staller.map((u) => u.write(0, chunk));
    expect(kept[0]).toBe('kept');
    expect(kept).toContain('too-large');
    const other = new HeldUpload('/other', 'ada');
    expect(other.write(0, chunk)).toBe('kept');
    staller[0]?.release();
    const again = new HeldUpload('/s-again', 'mallory');
    expect(again.write(0, Buffer.from('x'))).toBe('kept');
    for (const u of [...staller, other, again]) u.release();
  });

  it('shows reviewers the size, SHA-256 and first lines, or that the content is binary', () => {
    expect(HeldUpload.review('/srv/a.txt', Buffer.from('one\ntwo\n'), undefined)).toBe(
      'sftp upload /srv/a.txt\nsize: 8 bytes\nsha256: c3f9c8c283a2b1f2f1896f27a01cbe3cddc0c9d93f752e4639035a0f5b36f6e8\nfirst lines:\none\ntwo\n',
    );
    expect(HeldUpload.review('/bin.dat', Buffer.from([0, 1, 2]), 0o100755)).toMatch(/^sftp upload \/bin.dat mode 755\n[^]*\nfirst lines:\n\(binary content\)$/);
  });
});
