import { readFile } from 'node:fs/promises';
import { DEFAULT_DATA_DIR } from '../../local/dev-config';
import { parse, UsageError } from '../args';
import { kubeExecCommand } from './kube-exec';
import { EXIT } from '../exit-codes';
import { connectToTarget, printResults } from '../target-connection';


const REQUEST_ID = /request ([0-9a-f-]{36})/;
/** A Kubernetes manifest (applied through a Kubernetes target) rather than a SQL script. */
const KUBE_MANIFEST = /\.(ya?ml|json)$/i;

const common = {
  target: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  database: { type: 'string' },
  token: { type: 'string' },
  reason: { type: 'string' },
  'data-dir': { type: 'string', default: DEFAULT_DATA_DIR },
} as const;

/**
 * `twokey exec --target T -f script.sql [--reason R] [--wait]`: submits a whole script. Once approved it
 * runs as one transaction on the write credential. With `-f manifest.yaml` (or .json) the target is a
 * Kubernetes one: see kube-exec.ts. Without --wait the command returns after the
 * request is submitted (exit 5); running the same script again after approval runs it (once).
 */
export async function execCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...common, file: { type: 'string', short: 'f' }, wait: { type: 'boolean', default: false }, server: { type: 'string' }, 'ca-file': { type: 'string' }, namespace: { type: 'string', short: 'n' } });
  if (!values.file || !values.target) throw new UsageError('usage: twokey exec --target T -f script.sql [--reason R] [--wait] | -f manifest.yaml [--server URL --ca-file F] [-n NS]');
  if (KUBE_MANIFEST.test(values.file)) {
    return kubeExecCommand({ target: values.target, file: values.file, reason: values.reason, token: values.token, server: values.server, caFile: values['ca-file'], namespace: values.namespace, dataDir: values['data-dir'] });
  }
  const script = await readFile(values.file, 'utf8');
  const client = await connectToTarget({ ...values, dataDir: values['data-dir'] });
  let requestId: string | undefined;
  let submittedOnly = false;
  client.on('notice', (n) => {
    console.error(`NOTICE: ${n.message}`);
    requestId ??= REQUEST_ID.exec(n.message ?? '')?.[1];
    if (!values.wait && n.message?.includes('approval required')) {
      submittedOnly = true;
      // Leave now: the request stays open, and the same script runs once after it is approved.
      void client.end();
    }
  });
  try {
    if (values.reason) await client.query(`SET twokey.reason = '${values.reason.replace(/'/g, "''")}'`);
    await client.query("SET twokey.script = 'on'");
    const results = await client.query(script);
    printResults(results as unknown as import('pg').QueryResult);
    await client.end();
    return EXIT.ran;
  } catch (e) {
    if (submittedOnly) {
      console.error(`submitted for approval${requestId ? ` as request ${requestId}` : ''}; run the same command again once it is approved`);
      return EXIT.submitted;
    }
    const message = e instanceof Error ? e.message : String(e);
    console.error(`ERROR: ${message}`);
    await client.end().catch(() => undefined);
    return /denied|expired|no decision|approval required but unavailable|twokey:/.test(message) ? EXIT.refused : EXIT.failed;
  }
}

/** `twokey request-access --target T --minutes M --reason R`: asks for a time-boxed write window and waits for the decision. */
export async function requestAccessCommand(argv: string[]): Promise<number> {
  const { values } = parse(argv, { ...common, minutes: { type: 'string' } });
  const minutes = Number(values.minutes);
  if (!Number.isInteger(minutes) || minutes < 1) throw new UsageError('usage: twokey request-access --target T --minutes M --reason R');
  const client = await connectToTarget({ ...values, dataDir: values['data-dir'] });
  client.on('notice', (n) => console.error(`NOTICE: ${n.message}`));
  try {
    if (values.reason) await client.query(`SET twokey.reason = '${values.reason.replace(/'/g, "''")}'`);
    await client.query(`SET twokey.request_access = '${minutes}'`);
    await client.end();
    return EXIT.ran;
  } catch (e) {
    console.error(`ERROR: ${e instanceof Error ? e.message : String(e)}`);
    await client.end().catch(() => undefined);
    return EXIT.refused;
  }
}
