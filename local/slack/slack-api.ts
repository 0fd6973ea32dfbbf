import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { APPROVE_ACTION_ID, DENY_ACTION_ID, MAX_SLACK_TEXT_CHARS } from '../../core/slack/approval-message';
import { slackSignature } from '../../core/slack/signature';

const MAX_REQUEST_BYTES = 1024 * 1024;
/** Slack's own limits on a message. */
const MAX_BLOCKS = 50;
const MAX_SECTION_TEXT_CHARS = 3000;

export interface SlackUser {
  readonly email: string;
  /** Slack's `is_email_confirmed`: a user whose address is not confirmed cannot be mapped by it. */
  readonly emailConfirmed: boolean;
}

export interface SlackMessage {
  readonly channel: string;
  readonly ts: string;
  text: string;
  blocks: Record<string, unknown>[];
  updates: number;
}

export interface SlackStandInOptions {
  readonly botToken: string;
  readonly signingSecret: string;
  readonly users: Readonly<Record<string, SlackUser>>;
  readonly channels: readonly string[];
}

type Args = Record<string, string>;
type Reply = Record<string, unknown>;

/**
 * A local stand-in for Slack's Web API (`chat.postMessage`, `chat.update`, `chat.postEphemeral`,
 * `users.info`) as strict as Slack is about what twokey uses: bearer token, known channels and
 * users, the block limits, `ok:false` with Slack's error codes. It records messages and presses
 * their buttons the way Slack does: a signed `block_actions` payload POSTed to the app's request URL.
 */
export class LocalSlack {
  readonly messages: SlackMessage[] = [];
  readonly ephemeral: { channel: string; user: string; text: string }[] = [];
  private server: Server | undefined;
  private seq = 0;
  interactionsUrl: string | undefined;

  constructor(private readonly options: SlackStandInOptions) {}

  /** Listens on loopback; returns the `slackApiUrl` to give the SDK. */
  async start(host = '127.0.0.1'): Promise<string> {
    const server = createServer((req, res) => void this.serve(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    return `http://${host}:${(server.address() as AddressInfo).port}/api/`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: Reply): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/' || path === '/press') return this.serveViewer(req, res, path);
    const method = path.replace(/^\/api\//, '');
    if (req.method !== 'POST') return send(405, { ok: false, error: 'method_not_supported' });
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_REQUEST_BYTES) return send(413, { ok: false, error: 'request_too_large' });
      chunks.push(chunk as Buffer);
    }
    if (req.headers.authorization !== `Bearer ${this.options.botToken}`) return send(200, { ok: false, error: 'invalid_auth' });
    const type = req.headers['content-type'] ?? '';
    const raw = Buffer.concat(chunks).toString('utf8');
    const args: Args = type.startsWith('application/json') ? (JSON.parse(raw) as Args) : Object.fromEntries(new URLSearchParams(raw));
    send(200, this.call(method, args));
  }

  private call(method: string, args: Args): Reply {
    switch (method) {
      case 'chat.postMessage': {
        const channel = this.channelFor(args.channel);
        if (!channel) return { ok: false, error: 'channel_not_found' };
        const content = this.content(args);
        if ('error' in content) return { ok: false, error: content.error };
        const message: SlackMessage = { channel, ts: this.nextTs(), ...content, updates: 0 };
        this.messages.push(message);
        return { ok: true, channel, ts: message.ts, message: { text: message.text, blocks: message.blocks } };
      }
      case 'chat.update': {
        const message = this.messages.find((m) => m.channel === args.channel && m.ts === args.ts);
        if (!message) return { ok: false, error: 'message_not_found' };
        const content = this.content(args);
        if ('error' in content) return { ok: false, error: content.error };
        Object.assign(message, content, { updates: message.updates + 1 });
        return { ok: true, channel: message.channel, ts: message.ts };
      }
      case 'chat.postEphemeral': {
        const channel = this.channelFor(args.channel);
        if (!channel) return { ok: false, error: 'channel_not_found' };
        if (!args.user || !this.options.users[args.user]) return { ok: false, error: 'user_not_in_channel' };
        if (!args.text) return { ok: false, error: 'no_text' };
        this.ephemeral.push({ channel, user: args.user, text: args.text });
        return { ok: true, message_ts: this.nextTs() };
      }
      case 'users.info': {
        const user = args.user ? this.options.users[args.user] : undefined;
        if (!user) return { ok: false, error: 'user_not_found' };
        return { ok: true, user: { id: args.user, is_email_confirmed: user.emailConfirmed, profile: { email: user.email } } };
      }
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  /**
   * A page for a person trying twokey locally (`twokey dev --slack`): the messages as posted, and for
   * each pending one a button per Slack user that presses Approve or Deny as that user would.
   */
  private async serveViewer(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (path === '/press' && req.method === 'POST') {
      let raw = '';
      for await (const chunk of req) {
        raw += String(chunk);
        if (raw.length > MAX_REQUEST_BYTES) return void res.writeHead(413).end();
      }
      const form = new URLSearchParams(raw);
      const message = this.messages.find((m) => m.ts === form.get('ts'));
      const decision = form.get('decision');
      const user = form.get('user') ?? '';
      if (message && (decision === 'approve' || decision === 'deny') && this.options.users[user]) await this.press(message, decision, user).catch(() => undefined);
      return void res.writeHead(303, { location: '/' }).end();
    }
    const esc = (t: string): string => t.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const buttons = (m: SlackMessage): string =>
      Object.keys(this.options.users)
        .flatMap((u) => (['approve', 'deny'] as const).map((d) => `<form method="post" action="/press" style="display:inline"><input type="hidden" name="ts" value="${esc(m.ts)}"><input type="hidden" name="user" value="${esc(u)}"><button name="decision" value="${d}">${d} as ${esc(u)}</button></form>`))
        .join(' ');
    const items = this.messages
      .map((m) => {
        const pending = m.blocks.some((b) => b.type === 'actions');
        const texts = m.blocks.map((b) => (b.text as { text?: string } | undefined)?.text ?? '').filter(Boolean);
        return `<li><b>#${esc(m.channel)}</b> <pre>${esc(texts.join('\n'))}</pre>${pending ? buttons(m) : ''}</li>`;
      })
      .join('');
    const notes = this.ephemeral.map((e) => `<li>to ${esc(e.user)}: ${esc(e.text)}</li>`).join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>Slack stand-in</title><h1>Messages</h1><ul>${items}</ul><h2>Only-you-can-see notes</h2><ul>${notes}</ul>`);
  }

  /** A channel we know, or a user id (a direct message, in the app's DM channel with them). */
  private channelFor(id: string | undefined): string | undefined {
    if (!id) return undefined;
    if (this.options.channels.includes(id)) return id;
    if (this.options.users[id]) return `D${id}`;
    if (id.startsWith('D') && this.options.users[id.slice(1)]) return id;
    return undefined;
  }

  private content(args: Args): { text: string; blocks: Record<string, unknown>[] } | { error: string } {
    let blocks: Record<string, unknown>[] = [];
    if (args.blocks) {
      try {
        blocks = JSON.parse(args.blocks) as Record<string, unknown>[];
      } catch {
        return { error: 'invalid_blocks_format' };
      }
      const tooLong = (b: Record<string, unknown>): boolean => ((b.text as { text?: string } | undefined)?.text?.length ?? 0) > MAX_SECTION_TEXT_CHARS;
      if (!Array.isArray(blocks) || blocks.length > MAX_BLOCKS || blocks.some((b) => typeof b.type !== 'string' || tooLong(b))) return { error: 'invalid_blocks' };
    }
    if (!args.text && blocks.length === 0) return { error: 'no_text' };
    return { text: args.text ?? '', blocks };
  }

  private nextTs(): string {
    this.seq += 1;
    return `${Math.floor(Date.now() / 1000)}.${String(this.seq).padStart(6, '0')}`;
  }

  /**
   * Presses a button of a recorded message as `userId`, as Slack would: the interaction payload,
   * form-encoded, signed with the app's signing secret. `signingSecret` and `ageSeconds` let tests
   * send what an attacker or a replay would.
   */
  async press(message: SlackMessage, decision: 'approve' | 'deny', userId: string, forge: { signingSecret?: string; ageSeconds?: number } = {}): Promise<number> {
    if (!this.interactionsUrl) throw new Error('no interactivity request URL set');
    const actionId = decision === 'approve' ? APPROVE_ACTION_ID : DENY_ACTION_ID;
    const button = message.blocks
      .flatMap((b) => (Array.isArray(b.elements) ? (b.elements as { action_id?: string; value?: string }[]) : []))
      .find((e) => e.action_id === actionId);
    if (!button) throw new Error(`the message has no ${decision} button`);
    const payload = {
      type: 'block_actions',
      team: { id: 'T0LOCAL', domain: 'local' },
      user: { id: userId, username: userId, team_id: 'T0LOCAL' },
      api_app_id: 'A0TWOKEY',
      trigger_id: randomBytes(8).toString('hex'),
      container: { type: 'message', message_ts: message.ts, channel_id: message.channel, is_ephemeral: false },
      channel: { id: message.channel },
      message: { ts: message.ts, text: message.text.slice(0, MAX_SLACK_TEXT_CHARS), blocks: message.blocks },
      response_url: `${this.interactionsUrl}#response`,
      actions: [{ type: 'button', action_id: actionId, block_id: 'twokey_vote', value: button.value, action_ts: this.nextTs() }],
    };
    const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
    const timestamp = String(Math.floor(Date.now() / 1000) - (forge.ageSeconds ?? 0));
    const res = await fetch(this.interactionsUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': timestamp,
        'x-slack-signature': slackSignature(forge.signingSecret ?? this.options.signingSecret, timestamp, body),
      },
      body,
    });
    await res.arrayBuffer();
    return res.status;
  }
}
