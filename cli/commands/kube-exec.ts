import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { REASON_HEADER } from '../../core/kubernetes/request-info';
import { generatedTlsDir } from '../../agent/kubernetes/tls';
import { readDevInfo } from '../../local/dev-config';
import { UsageError } from '../args';
import { freshToken } from '../auth/login-session';
import { configDir } from '../auth/token-cache';
import { EXIT } from '../exit-codes';
import { applyRequest, discoveryPath, manifestObjects, type DiscoveredResource } from '../kube-apply';

/** Longest answer the command reads from the agent (a discovery document, an applied object). */
const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

export interface KubeExecOptions {
  readonly target: string;
  readonly file: string;
  readonly reason?: string;
  readonly token?: string;
  readonly server?: string;
  readonly caFile?: string;
  readonly namespace?: string;
  readonly dataDir: string;
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly warnings: readonly string[];
}

/**
 * `twokey exec --target T -f manifest.yaml`: each object of the manifest server-side applied through
 * the agent, one after the other. A held apply waits for its decision with no client timeout (kubectl
 * would give up at its --request-timeout); the agent's notices (Warning headers) are printed.
 */
export async function kubeExecCommand(o: KubeExecOptions): Promise<number> {
  const objects = manifestObjects(await readFile(o.file, 'utf8'));
  const endpoint = await agentEndpoint(o);
  const token = o.token ?? (await freshToken(configDir()));
  const call = (method: string, path: string, body?: string): Promise<Answer> => send(endpoint, token, method, path, body, o.reason);
  const discovered = new Map<string, DiscoveredResource[]>();
  for (const object of objects) {
    const apiVersion = object.apiVersion as string;
    let resources = discovered.get(apiVersion);
    if (!resources) {
      const listing = await call('GET', discoveryPath(apiVersion));
      if (listing.status !== 200) return failed(`discovery of ${apiVersion}`, listing);
      resources = (JSON.parse(listing.body) as { resources?: DiscoveredResource[] }).resources ?? [];
      discovered.set(apiVersion, resources);
    }
    const apply = applyRequest(object, resources, o.namespace ?? 'default');
    console.error(`applying ${apply.label} (held until approved when the policy says so)`);
    const answer = await call('PATCH', apply.path, JSON.stringify(apply.object));
    for (const w of answer.warnings) console.error(`Warning: ${w}`);
    if (answer.status >= 300) return failed(apply.label, answer);
    console.log(`${apply.label} applied`);
  }
  return EXIT.ran;
}

function failed(what: string, answer: Answer): number {
  let message = answer.body;
  try {
    message = String((JSON.parse(answer.body) as { message?: unknown }).message ?? answer.body);
  } catch {
    // not a Status: shown as it came
  }
  console.error(`ERROR: ${what}: ${message}`);
  return answer.status === 403 ? EXIT.refused : EXIT.failed;
}

async function agentEndpoint(o: KubeExecOptions): Promise<{ url: URL; ca: string }> {
  let server = o.server;
  let caFile = o.caFile;
  if (!server || !caFile) {
    const info = await readDevInfo(o.dataDir);
    const target = info.targets[o.target];
    if (target?.protocol !== 'kubernetes' || !target.endpoint) throw new UsageError(`target ${o.target} is not a Kubernetes target of this dev stack (or pass --server and --ca-file)`);
    server ??= `https://${target.endpoint}`;
    caFile ??= join(generatedTlsDir(resolve(o.dataDir, 'agent', 'state'), o.target), 'cert.pem');
  }
  return { url: new URL(server), ca: await readFile(caFile, 'utf8') };
}

/** One request to the agent, pinned to its CA, with no timeout (a held write waits as long as its approval). */
function send(endpoint: { url: URL; ca: string }, token: string, method: string, path: string, body: string | undefined, reason: string | undefined): Promise<Answer> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      {
        hostname: endpoint.url.hostname,
        port: endpoint.url.port || 443,
        method,
        path,
        ca: endpoint.ca,
        // Set here, so NODE_TLS_REJECT_UNAUTHORIZED=0 in the environment does not lift the pin.
        rejectUnauthorized: true,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/apply-patch+yaml', 'content-length': Buffer.byteLength(body) } : {}),
          ...(reason ? { [REASON_HEADER]: reason } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) res.destroy(new Error(`the answer is over ${MAX_ANSWER_BYTES} bytes`));
          else chunks.push(c);
        });
        res.once('error', reject);
        res.once('end', () => {
          const warnings = [res.headers.warning ?? []].flat().map((w) => /^\d{3} \S+ "(.*)"$/.exec(w)?.[1]?.replace(/\\"/g, '"') ?? w);
          resolvePromise({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), warnings });
        });
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}
