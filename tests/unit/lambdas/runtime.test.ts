import { getRuntime, resetRuntime } from '../../../lambdas/shared/runtime';
import { TABLES } from '../../../lambdas/store/table-definitions';

describe('control-plane runtime', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    for (const t of Object.values(TABLES)) process.env[t.envVar] = `twokey-${t.envVar.toLowerCase()}`;
    process.env.RECORDINGS_BUCKET = 'recordings';
    process.env.OIDC_ISSUERS = JSON.stringify([{ issuer: 'https://issuer.example', audience: 'data' }]);
    process.env.LOG_LEVEL = 'info';
    resetRuntime();
  });
  afterEach(() => {
    process.env = { ...saved };
    resetRuntime();
    jest.restoreAllMocks();
  });

  it('logs each component under its own name while sharing one set of clients', () => {
    const lines: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));

    const tunnel = getRuntime('tunnel');
    const approvals = getRuntime('approvals');
    tunnel.deps.log.info('tunnel.event');
    approvals.deps.log.info('approvals.event');

    expect(lines.map((l) => (JSON.parse(l) as { component: string }).component)).toEqual(['tunnel', 'approvals']);
    expect(approvals.deps.approvals).toBe(tunnel.deps.approvals);
    expect(getRuntime('tunnel')).toBe(tunnel);
  });
});
