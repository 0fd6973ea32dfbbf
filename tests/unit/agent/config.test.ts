import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadAgentConfig } from '../../../agent/config';

const HEADER = `
name: edge-1
controlPlane: { url: 'ws://127.0.0.1:1/ws' }
stateDir: state
identity: { issuers: [{ issuer: 'https://issuer.example', audience: data }] }
`;

async function load(targets: string): Promise<Awaited<ReturnType<typeof loadAgentConfig>>> {
  const dir = mkdtempSync(join(tmpdir(), 'tk-config-'));
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, `${HEADER}targets:\n${targets}`);
  return loadAgentConfig(file);
}

describe('agent config targets (one shape per protocol)', () => {
  it('reads a Postgres, an SSH and a Kubernetes target, resolving their files against the config file', async () => {
    const config = await load(`
  - name: db
    protocol: postgres
    listen: { port: 0 }
    upstream: { host: 127.0.0.1, port: 5432, database: demo }
    readCredential: { user: reader, passwordEnv: READ_PW }
    writeCredential: { user: writer, passwordEnv: WRITE_PW }
  - name: bastion
    protocol: ssh
    listen: { port: 0 }
    upstream: { host: 10.0.0.5 }
    hostKey: SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8
    readLogin: { user: viewer, keyFile: keys/viewer }
    writeLogin: { user: operator, keyFile: keys/operator }
  - name: cluster
    protocol: kubernetes
    listen: { port: 0 }
    apiServer: https://10.0.0.1:6443
    caFile: ca.pem
    readToken: { tokenFile: tokens/read }
    writeToken: { tokenEnv: KUBE_WRITE_TOKEN }
`);
    const [db, bastion, cluster] = config.targets;
    expect(db?.protocol).toBe('postgres');
    expect(bastion?.protocol === 'ssh' && bastion.upstream.port).toBe(22);
    expect(bastion?.protocol === 'ssh' && bastion.readLogin.keyFile).toMatch(/^\/.*\/keys\/viewer$/);
    expect(cluster?.protocol === 'kubernetes' && cluster.caFile).toMatch(/^\/.*\/ca\.pem$/);
    expect(cluster?.protocol === 'kubernetes' && cluster.writeToken).toEqual({ tokenEnv: 'KUBE_WRITE_TOKEN' });
  });

  it('asks no Postgres field of an SSH target, and refuses one there', async () => {
    await expect(
      load(`
  - name: bastion
    protocol: ssh
    listen: { port: 0 }
    upstream: { host: 10.0.0.5 }
    hostKey: SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8
    readLogin: { user: viewer, keyFile: k }
    writeLogin: { user: operator, keyFile: k }
    readCredential: { user: reader }
`),
    ).rejects.toThrow(/targets\.0: Unrecognized key: "readCredential"/);
  });

  it('refuses an SSH target without a pinned host key, and a Kubernetes token named twice', async () => {
    await expect(load(`  - { name: b, protocol: ssh, listen: { port: 0 }, upstream: { host: h }, hostKey: any, readLogin: { user: a, keyFile: k }, writeLogin: { user: b, keyFile: k } }\n`)).rejects.toThrow(
      /hostKey: a SHA256: host key fingerprint/,
    );
    await expect(
      load(`  - { name: c, protocol: kubernetes, listen: { port: 0 }, apiServer: 'https://k', readToken: { tokenFile: a, tokenEnv: B }, writeToken: { tokenEnv: W } }\n`),
    ).rejects.toThrow(/exactly one of tokenFile or tokenEnv/);
  });
});
