import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Browser, Page } from 'playwright-core';
import { IDP_REVIEW_CLIENT_ID } from '../../local/idp/oidc-idp';
import { freePort } from '../../local/free-port';
import { launchChromium, loopbackContext } from '../support/browser';
import { signInAs, startTestIdp, type TestIdp } from '../support/oidc-idp';
import { waitForMail } from '../support/outbox';
import { PG_TEST_POLICY, startPgStack, type PgStack } from '../support/pg-stack';

const DEV_REVIEWERS = 'reviewers: { dba: [{ subject: bob, email: bob@example.com }] }';

/** The test policy with its one reviewer, bob, at `issuer`. */
function reviewersAt(issuer: string): string {
  if (!PG_TEST_POLICY.includes(DEV_REVIEWERS)) throw new Error('the test policy changed its reviewers');
  return PG_TEST_POLICY.replace(DEV_REVIEWERS, `reviewers: { dba: [{ subject: bob, email: bob@example.com, issuer: "${issuer}" }] }`);
}

describe('reviewer sign-in on the review page (policy reviewerSignIn, a real OpenID provider, headless Chromium)', () => {
  let idp: TestIdp;
  let stack: PgStack;
  let browser: Browser;

  beforeAll(async () => {
    const port = await freePort('127.0.0.1');
    const secret = randomBytes(16).toString('hex');
    idp = await startTestIdp({ TWOKEY_IDP_REVIEW_SECRET: secret, TWOKEY_IDP_REVIEW_REDIRECT: `http://127.0.0.1:${port}/approvals/sign-in/callback` });
    [stack, browser] = await Promise.all([
      // bob's directory entry names him at the IdP reviewers sign in with: sign-in matches issuer and subject.
      startPgStack({ policy: `${reviewersAt(idp.issuer)}\nreviewerSignIn: [dba]\n`, httpPort: port, reviewerOidc: { issuer: idp.issuer, clientId: IDP_REVIEW_CLIENT_ID, clientSecret: secret } }),
      launchChromium(),
    ]);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
    await idp?.stop();
  });

  /** A person's browser (own cookies) on the review link, signed in as `user` from the page's link. */
  async function signedInPage(link: string, user: string): Promise<Page> {
    const page = await (await loopbackContext(browser)).newPage();
    await page.goto(link);
    await Promise.all([page.waitForNavigation(), page.click('#sign-in a')]);
    await signInAs(page, user);
    await page.waitForURL(/\/approvals\/review\?t=/);
    return page;
  }

  it('counts a vote only from the link\'s reviewer signed in with the IdP, and shows who is signed in', async () => {
    const { host, port } = stack.endpoint('test-pg');
    const token = await stack.token('alice', ['support']);
    const psql = new Promise<string>((resolve) => {
      execFile('psql', [`host=${host} port=${port} dbname=demo user=alice`, '-X', '-c', "UPDATE orders SET status = 'signed-in' WHERE id = 42"], { env: { ...process.env, PGPASSWORD: token } }, (_e, stdout, stderr) =>
        resolve(stdout + stderr),
      );
    });
    const mail = await waitForMail(stack.cp.outboxDir, 'bob@example.com', 'signed-in');

    // Without sign-in: no voting form, and a forged POST does not count.
    const anonymous = await (await loopbackContext(browser)).newPage();
    await anonymous.goto(mail.link);
    expect(await anonymous.textContent('#sign-in')).toContain('Sign in to vote');
    expect(await anonymous.$('button[value="approve"]')).toBeNull();
    const t = new URL(mail.link).searchParams.get('t') as string;
    const forged = await fetch(`${stack.cp.httpUrl}/approvals/review`, { method: 'POST', body: new URLSearchParams({ t, decision: 'approve' }) });
    expect(forged.status).toBe(401);

    // Signed in as someone else (carol is a dba too, but the link is bob's): refused.
    const carol = await signedInPage(mail.link, 'carol');
    expect(await carol.textContent('#sign-in')).toContain('Signed in as carol@example.com');
    await Promise.all([carol.waitForNavigation(), carol.click('button[value="approve"]')]);
    expect(await carol.textContent('h1')).toBe("Not this link's reviewer");

    const bob = await signedInPage(mail.link, 'bob');
    expect(await bob.textContent('#sign-in')).toContain('Signed in as bob@example.com');
    await Promise.all([bob.waitForNavigation(), bob.click('button[value="approve"]')]);
    expect(await bob.textContent('h1')).toBe('Approved');
    expect(await psql).toMatch(/UPDATE 1/);
  });
});
