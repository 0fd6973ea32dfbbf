import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubernetesTargetConfig } from '../../../agent/config';
import { generatedTlsDir, listenerTls } from '../../../agent/kubernetes/tls';

const target = (host: string): KubernetesTargetConfig => ({
  name: 'k',
  protocol: 'kubernetes',
  listen: { host, port: 0 },
  apiServer: 'https://127.0.0.1:1',
  readToken: { tokenEnv: 'R' },
  writeToken: { tokenEnv: 'W' },
});

describe("the Kubernetes listener's certificate", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tk-kube-tls-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is made once per target, names localhost, 127.0.0.1 and the listen host, and is its own CA', async () => {
    const made = await listenerTls(target('10.1.2.3'), dir);
    const cert = new X509Certificate(made.cert);
    expect(cert.ca).toBe(true);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:10.1.2.3');
    expect(cert.checkPrivateKey(createPrivateKey(made.key))).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
  });

  it('is kept in the state directory and served again after a restart (kubeconfigs pin it)', async () => {
    const first = await listenerTls(target('127.0.0.1'), dir);
    const again = await listenerTls(target('127.0.0.1'), dir);
    expect(again.cert).toBe(first.cert);
    expect(readFileSync(join(generatedTlsDir(dir, 'k'), 'cert.pem'), 'utf8')).toBe(first.cert);
  });

  it('is made anew when the listen host is not among its names', async () => {
    const first = await listenerTls(target('127.0.0.1'), dir);
    const moved = await listenerTls(target('192.168.7.7'), dir);
    expect(moved.cert).not.toBe(first.cert);
    expect(new X509Certificate(moved.cert).subjectAltName).toContain('192.168.7.7');
  });
});
