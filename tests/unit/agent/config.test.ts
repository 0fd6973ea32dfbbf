import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AgentConfigError, loadAgentConfig } from '../../../agent/config';
import { isLoopback } from '../../../agent/net/loopback';

const dir = mkdtempSync(join(tmpdir(), 'tk-agent-config-'));
let n = 0;

/** Writes an agent config with the given control-plane URL and target, and loads it. */
function load(url: string, target: string): ReturnType<typeof loadAgentConfig> {
  const file = join(dir, `agent-${++n}.yaml`);
  writeFileSync(
    file,
    `name: edge
controlPlane: { url: ${JSON.stringify(url)} }
stateDir: state
identity: { issuers: [{ issuer: https://login.example.com/, audience: twokey }] }
targets:
  - ${target}
`,
  );
  return loadAgentConfig(file);
}

const PG = (listen: string, database = ', database: orders', tls = ''): string =>
  `{ name: orders-db, protocol: postgres, listen: { host: ${JSON.stringify(listen)}, port: 6543 }, upstream: { host: db.internal, port: 5432${database} }, readCredential: { user: r }, writeCredential: { user: w }${tls} }`;

describe('agent config', () => {
  it('loads the shipped example', async () => {
    await expect(loadAgentConfig(join(__dirname, '../../../examples/agent.yaml'))).resolves.toMatchObject({ name: 'orders-agent' });
  });

  it.each(['wss://cp.example.com/prod', 'ws://127.0.0.1:8080/', 'ws://localhost:8080/', 'ws://[::1]:8080/'])('accepts the control-plane URL %s', async (url) => {
    await expect(load(url, PG('127.0.0.1'))).resolves.toMatchObject({ controlPlane: { url } });
  });

  it.each(['ws://cp.example.com/prod', 'ws://10.0.0.5:8080/', 'ws://0.0.0.0:8080/', 'http://127.0.0.1/'])('refuses the control-plane URL %s (the agent key would travel in clear)', async (url) => {
    await expect(load(url, PG('127.0.0.1'))).rejects.toThrow(AgentConfigError);
  });

  it('refuses a Postgres target that does not pin its database', async () => {
    await expect(load('wss://cp.example.com', PG('127.0.0.1', ''))).rejects.toThrow(/upstream.database is required/);
    await expect(load('wss://cp.example.com', PG('127.0.0.1', ', database: ""'))).rejects.toThrow(/upstream.database is required/);
  });

  it('refuses a Postgres listener other hosts can reach without TLS, and accepts it with TLS', async () => {
    await expect(load('wss://cp.example.com', PG('0.0.0.0'))).rejects.toThrow(/reachable from other hosts: configure tls/);
    await expect(load('wss://cp.example.com', PG('10.1.2.3'))).rejects.toThrow(AgentConfigError);
    await expect(load('wss://cp.example.com', PG('0.0.0.0', ', database: orders', ', tls: { certFile: c.pem, keyFile: k.pem }'))).resolves.toMatchObject({ targets: [{ listen: { host: '0.0.0.0' } }] });
  });
});

describe('loopback addresses', () => {
  it.each(['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1', '[::1]', 'localhost', 'LOCALHOST', '0:0:0:0:0:0:0:1'])('%s is loopback', (a) => expect(isLoopback(a)).toBe(true));
  it.each(['0.0.0.0', '::', '10.0.0.1', '192.0.2.2', '::ffff:10.0.0.1', 'fd00::2', '128.0.0.1', 'localhost.example.com', '127.0.0.1.nip.io', ''])('%s is not loopback', (a) => expect(isLoopback(a)).toBe(false));
});

const HEADER = `
name: edge-1
controlPlane: { url: 'ws://127.0.0.1:1/ws' }
stateDir: state
identity: { issuers: [{ issuer: 'https://issuer.example', audience: data }] }
`;

async function loadTargets(targets: string): Promise<Awaited<ReturnType<typeof loadAgentConfig>>> {
  const dir = mkdtempSync(join(tmpdir(), 'tk-config-'));
  const file = join(dir, 'agent.yaml');
  writeFileSync(file, `${HEADER}targets:\n${targets}`);
  return loadAgentConfig(file);
}

describe('agent config targets (one shape per protocol)', () => {
  it('reads a Postgres, an SSH and a Kubernetes target, resolving their files against the config file', async () => {
    const config = await loadTargets(`
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
      loadTargets(`
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
    await expect(loadTargets(`  - { name: b, protocol: ssh, listen: { port: 0 }, upstream: { host: h }, hostKey: any, readLogin: { user: a, keyFile: k }, writeLogin: { user: b, keyFile: k } }\n`)).rejects.toThrow(
      /hostKey: a SHA256: host key fingerprint/,
    );
    await expect(
      loadTargets(`  - { name: c, protocol: kubernetes, listen: { port: 0 }, apiServer: 'https://k', readToken: { tokenFile: a, tokenEnv: B }, writeToken: { tokenEnv: W } }\n`),
    ).rejects.toThrow(/exactly one of tokenFile or tokenEnv/);
  });
});

describe('agent config: the MCP endpoint', () => {
  const withMcp = (mcp: string): ReturnType<typeof loadAgentConfig> => {
    const file = join(dir, `agent-mcp-${++n}.yaml`);
    writeFileSync(file, `name: edge\ncontrolPlane: { url: "wss://cp.example.com/" }\nstateDir: state\nidentity: { issuers: [{ issuer: https://login.example.com/, audience: twokey }] }\nmcp: ${mcp}\n`);
    return loadAgentConfig(file);
  };

  it('takes an MCP endpoint on loopback without TLS, and resolves its TLS files against the config file', async () => {
    await expect(withMcp('{ listen: { host: 127.0.0.1, port: 6580 } }')).resolves.toMatchObject({ mcp: { listen: { host: '127.0.0.1', port: 6580 } } });
    await expect(withMcp('{ listen: { host: 0.0.0.0, port: 8443 }, tls: { certFile: mcp.crt, keyFile: mcp.key } }')).resolves.toMatchObject({ mcp: { tls: { certFile: join(dir, 'mcp.crt') } } });
  });

  it('takes a generated certificate for an MCP endpoint other hosts reach (on a wildcard bind with the public URL it names), and refuses another word for it', async () => {
    await expect(withMcp('{ listen: { host: 0.0.0.0, port: 8443 }, tls: generated, publicUrl: "https://agent.acme.io:8443" }')).resolves.toMatchObject({ mcp: { tls: 'generated' } });
    await expect(withMcp('{ listen: { host: 10.0.0.5, port: 8443 }, tls: generated }')).resolves.toMatchObject({ mcp: { tls: 'generated' } });
    await expect(withMcp('{ listen: { host: 0.0.0.0, port: 8443 }, tls: generated }')).rejects.toThrow(/tls: generated on 0.0.0.0 needs publicUrl/);
    await expect(withMcp('{ listen: { host: 0.0.0.0, port: 8443 }, tls: yes }')).rejects.toThrow(/mcp\.tls/);
  });

  it('refuses an MCP endpoint other hosts can reach without TLS (the bearer token would travel in clear)', async () => {
    await expect(withMcp('{ listen: { host: 0.0.0.0, port: 8443 } }')).rejects.toThrow(/mcp: listen.host 0.0.0.0 is reachable from other hosts: configure tls/);
  });
});
