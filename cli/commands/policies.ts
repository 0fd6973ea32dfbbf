import { readFile } from 'node:fs/promises';
import { parse, UsageError } from '../args';
import { apiCall, clientOptions, CONTROL_PLANE_OPTIONS } from '../control-plane-client';

/** `twokey policies get [--json]` and `twokey policies put FILE [--expected-version N]`. */
export async function policiesCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, { ...CONTROL_PLANE_OPTIONS, 'expected-version': { type: 'string' } });
  const client = clientOptions(values);
  if (sub === 'get') {
    const { json } = await apiCall(client, 'GET', '/policies');
    const record = json as { version: number; source: string; updatedAt: string; updatedBy: string };
    if (values.json) console.log(JSON.stringify(record, null, 2));
    else process.stdout.write(`# version ${record.version}, ${record.updatedAt} by ${record.updatedBy}\n${record.source}`);
    return 0;
  }
  if (sub === 'put') {
    const file = positionals[0];
    if (!file) throw new UsageError('usage: twokey policies put FILE [--expected-version N]');
    let expected = values['expected-version'];
    if (expected === undefined) {
      const current = await apiCall(client, 'GET', '/policies').catch(() => undefined);
      expected = String((current?.json as { version?: number } | undefined)?.version ?? 0);
    }
    const { json } = await apiCall(client, 'PUT', '/policies', await readFile(file, 'utf8'), {
      'content-type': 'application/yaml',
      'if-match': `"${expected}"`,
    });
    console.log(values.json ? JSON.stringify(json) : `policy version ${(json as { version: number }).version} stored`);
    return 0;
  }
  throw new UsageError('usage: twokey policies get|put');
}
