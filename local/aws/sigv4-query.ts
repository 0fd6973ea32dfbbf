import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Checks a presigned (query-string) AWS Signature Version 4 request, as S3 does: the canonical request
 * is rebuilt from the method, the path as sent, every query parameter but the signature, and the
 * headers the URL names in X-Amz-SignedHeaders with the values this request carries. A header signed
 * into the URL (a length, a checksum) that the request sends with another value, or not at all, makes
 * the signature differ. Written from the SigV4 specification ("Create a signed request",
 * "Authenticating requests: using query parameters"), independently of the SDK that signs.
 */
export interface PresignedRequest {
  readonly method: string;
  /** The path exactly as it arrived (still percent-encoded). */
  readonly rawPath: string;
  readonly query: URLSearchParams;
  /** Lower-case header names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export type PresignCheck = { ok: true } | { ok: false; code: 'AccessDenied' | 'SignatureDoesNotMatch' | 'AuthorizationQueryParametersError'; message: string };

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** S3's own bound on X-Amz-Expires: seven days. */
const MAX_EXPIRES_SECONDS = 7 * 24 * 3600;

/** RFC 3986 unreserved characters stay, everything else is %XX (upper case), as SigV4 requires. */
const uriEncode = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

export function isPresigned(query: URLSearchParams): boolean {
  return query.has('X-Amz-Signature');
}

export function checkPresigned(req: PresignedRequest, secretAccessKey: string, now: Date): PresignCheck {
  const q = req.query;
  const [algorithm, credential, amzDate, expires, signedHeaders, signature] = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'].map((k) => q.get(k));
  if (algorithm !== ALGORITHM || !credential || !amzDate || !expires || !signedHeaders || !signature) {
    return { ok: false, code: 'AuthorizationQueryParametersError', message: 'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.' };
  }
  const [, date, region, service, terminal] = credential.split('/');
  const signedAt = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  const expiresSeconds = Number(expires);
  if (!date || !region || !service || terminal !== 'aws4_request' || !signedAt || !Number.isInteger(expiresSeconds) || expiresSeconds < 1 || expiresSeconds > MAX_EXPIRES_SECONDS) {
    return { ok: false, code: 'AuthorizationQueryParametersError', message: 'X-Amz-Credential, X-Amz-Date or X-Amz-Expires is malformed.' };
  }
  const signedMs = Date.UTC(Number(signedAt[1]), Number(signedAt[2]) - 1, Number(signedAt[3]), Number(signedAt[4]), Number(signedAt[5]), Number(signedAt[6]));
  if (now.getTime() > signedMs + expiresSeconds * 1000) return { ok: false, code: 'AccessDenied', message: 'Request has expired' };

  const names = signedHeaders.split(';');
  const canonicalHeaders = names
    .map((name) => {
      const value = req.headers[name];
      const joined = Array.isArray(value) ? value.join(',') : (value ?? '');
      return `${name}:${joined.trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const canonicalQuery = [...q.entries()]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const payloadHash = q.get('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
  const canonicalRequest = [req.method, req.rawPath, canonicalQuery, canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, createHash('sha256').update(canonicalRequest, 'utf8').digest('hex')].join('\n');
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
  const expected = Buffer.from(hmac(signingKey, stringToSign).toString('hex'));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { ok: false, code: 'SignatureDoesNotMatch', message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.' };
  }
  return { ok: true };
}
