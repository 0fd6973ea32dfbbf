import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import forge from 'node-forge';
import type { KubernetesTargetConfig } from '../config';

/** How long a certificate the agent makes for itself is valid; a new one is made when less than a month is left. */
export const GENERATED_CERT_DAYS = 825;
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

export interface ListenerTls {
  readonly cert: string;
  readonly key: string;
}

/** Where a target's generated certificate lives: kubeconfigs pin it, so it survives restarts. */
export function generatedTlsDir(stateDir: string, target: string): string {
  return join(stateDir, 'kubernetes', target);
}

/**
 * The certificate the target's HTTPS listener presents: the configured files, or one made for this
 * target (self-signed, usable as its own CA so that `twokey kubeconfig` can pin it) and kept in the
 * state directory. It names localhost, 127.0.0.1 and the listen host.
 */
export function listenerTls(target: KubernetesTargetConfig, stateDir: string): Promise<ListenerTls> {
  return configuredOrGeneratedTls(target.tls, generatedTlsDir(stateDir, target.name), target.name, target.listen.host);
}

/**
 * A listener's certificate: the configured files, or one made for `name` and kept in `dir` (made anew
 * when it is close to expiry or no longer names the listen host and `otherHosts`). Any listener of the
 * agent (the MCP endpoint's too) gets its generated certificate this way.
 */
export async function configuredOrGeneratedTls(configured: { certFile: string; keyFile: string } | undefined, dir: string, name: string, listenHost: string, otherHosts: readonly string[] = []): Promise<ListenerTls> {
  if (configured) return { cert: await readFile(configured.certFile, 'utf8'), key: await readFile(configured.keyFile, 'utf8') };
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const existing = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]).catch(() => undefined);
  const hosts = hostsFor(listenHost, otherHosts);
  if (existing && stillValid(existing[0], hosts)) return { cert: existing[0], key: existing[1] };
  const made = selfSignedCertificate(name, hosts);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(`${keyFile}.tmp`, made.key, { mode: 0o600 });
  await writeFile(`${certFile}.tmp`, made.cert, { mode: 0o644 });
  await rename(`${keyFile}.tmp`, keyFile);
  await rename(`${certFile}.tmp`, certFile);
  return made;
}

function hostsFor(listenHost: string, otherHosts: readonly string[]): string[] {
  const any = listenHost === '0.0.0.0' || listenHost === '::';
  return [...new Set(['localhost', '127.0.0.1', ...(any ? [] : [listenHost]), ...otherHosts])];
}

function stillValid(certPem: string, hosts: readonly string[]): boolean {
  try {
    const cert = forge.pki.certificateFromPem(certPem);
    if (cert.validity.notAfter.getTime() - Date.now() < RENEW_BEFORE_MS) return false;
    const san = cert.getExtension('subjectAltName') as { altNames?: { value?: string; ip?: string }[] } | undefined;
    const names = new Set((san?.altNames ?? []).map((n) => n.ip ?? n.value));
    return hosts.every((h) => names.has(h));
  } catch {
    return false;
  }
}

/** A self-signed RSA certificate for `hosts` (node-forge signs only RSA), marked as a CA so that clients can pin it as their root. */
export function selfSignedCertificate(name: string, hosts: readonly string[]): ListenerTls {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pub = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  const priv = forge.pki.privateKeyFromPem(privateKey.export({ type: 'pkcs1', format: 'pem' }).toString());
  const cert = forge.pki.createCertificate();
  cert.publicKey = pub;
  // A positive serial: the high bit clear.
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + GENERATED_CERT_DAYS * 24 * 3600 * 1000);
  const subject = [{ name: 'commonName', value: `twokey agent ${name}` }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })) },
  ]);
  cert.sign(priv, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}
