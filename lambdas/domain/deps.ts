import type { JWK } from 'jose';
import type { SlackBlocks } from '../../core/slack/approval-message';
import type { ControlMessage } from '../../core/tunnel/messages';
import type { Logger } from '../../core/log';
import type { ApprovalStore } from '../store/approval-store';
import type { SamlStore } from '../store/saml-store';
import type { SlackPostStore } from '../store/slack-post-store';
import type { SshKeyStore } from '../store/ssh-key-store';
import type { AuditStore, ChunkStore, SessionStore } from '../store/session-store';
import type { AgentStore, ConnectionStore, PolicyStore } from '../store/stores';

/** Step Functions, as the approval domain uses it. */
export interface ApprovalWorkflow {
  /** Starts the execution named by the request id; starting it again is harmless. */
  start(requestId: string): Promise<void>;
  /** Completes the waiting task (the callback of `.waitForTaskToken`). */
  complete(taskToken: string, output: { outcome: 'approved' | 'denied' }): Promise<void>;
}

/** What an upload URL is signed for: S3 stores exactly these bytes under its key, or nothing. */
export interface SignedContent {
  /** SHA-256 of the body, hex. */
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * The recordings bucket, as the domain uses it (S3 behind it; presigned URLs for agents and auditors).
 * It has Object Lock: every write carries a checksum (S3 refuses one without).
 */
export interface RecordingBucket {
  presignPut(key: string, expiresSeconds: number, content: SignedContent): Promise<string>;
  presignGet(key: string, expiresSeconds: number): Promise<string>;
  /** The size of every object under `prefix`, by key. */
  sizes(prefix: string): Promise<Map<string, number>>;
  /** Writes an object unless its key holds one already (`exists`: nothing is replaced). */
  putOnce(key: string, body: Buffer, contentType: string): Promise<'written' | 'exists'>;
}

export interface Mail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export interface Mailer {
  send(mail: Mail): Promise<void>;
}

/** Sends one message to one agent connection. `gone` means the connection no longer exists. */
export type AgentPusher = (connectionId: string, message: ControlMessage) => Promise<'sent' | 'gone'>;

/** Slack's Web API as the approval domain uses it (the official SDK behind it, a stand-in locally). */
export interface SlackApi {
  postMessage(channel: string, message: SlackBlocks): Promise<{ channel: string; ts: string }>;
  updateMessage(channel: string, ts: string, message: SlackBlocks): Promise<void>;
  /** A message only `user` sees in `channel` (why a press changed nothing). */
  tellUser(channel: string, user: string, text: string): Promise<void>;
  /** The user's email when Slack has confirmed it, else undefined. */
  confirmedEmail(userId: string): Promise<string | undefined>;
}

/** Signs the control plane's own tokens (for SAML sign-ins), which agents trust like any issuer. */
export interface TokenSigner {
  readonly issuer: string;
  sign(identity: { subject: string; name: string; email: string | undefined; groups: readonly string[] }, ttlSeconds: number): Promise<string>;
  /** The public keys its tokens verify with (the issuer's JWKS). */
  publicJwks(): Promise<JWK[]>;
}

/** Closes one agent connection (the Management API's DeleteConnection). `gone` means it was closed already. */
export type AgentDisconnector = (connectionId: string) => Promise<'closed' | 'gone'>;

/** Everything a control-plane domain function may touch, injected by the handler. */
export interface ControlPlaneDeps {
  readonly agents: AgentStore;
  readonly connections: ConnectionStore;
  readonly policies: PolicyStore;
  /** The current policy as read at most seconds ago: for a session start's check, as old as the policy the agent serves by (see RecentPolicy). */
  readonly recentPolicy: Pick<PolicyStore, 'latest'>;
  readonly approvals: ApprovalStore;
  readonly sessions: SessionStore;
  /** Each recording chunk's digest and length, as declared when its upload URL was signed. */
  readonly chunks: ChunkStore;
  readonly audit: AuditStore;
  /** Callers' registered SSH public keys. */
  readonly sshKeys: SshKeyStore;
  readonly recordings: RecordingBucket;
  readonly workflow: ApprovalWorkflow;
  readonly mailer: Mailer;
  /** The key approval links are signed with (from Secrets Manager; never in the template or plain env). */
  readonly linkKey: () => Promise<Buffer>;
  /** Base URL of the HTTP API, for links in emails. */
  readonly publicUrl: string;
  readonly push: AgentPusher;
  readonly disconnect: AgentDisconnector;
  readonly clock: () => Date;
  readonly log: Logger;
  /** Approvals in Slack, when the deployment has an app (bot token and signing secret in Secrets Manager). */
  readonly slack?: { readonly api: SlackApi; readonly signingSecret: () => Promise<string>; readonly posts: SlackPostStore };
  /** The reviewer sign-in client's secret, when it is a confidential client whose secret is in Secrets Manager (AWS). */
  readonly reviewerClientSecret?: () => Promise<string>;
  /** The SAML service provider, when an identity provider is configured. */
  readonly saml?: { readonly store: SamlStore; readonly signer: TokenSigner };
}

export type { Logger };
