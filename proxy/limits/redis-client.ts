import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { encodeCommand, RespError, RespParser, type RespValue } from './resp';

/**
 * A small Redis client for the limits store: one pipelined connection over node:net (or node:tls for
 * rediss://), commands answered in order. It never makes a caller wait for a connection: while it is not
 * connected, or when `maxPending` commands are already waiting, send() fails at once, and the limiter
 * decides the request without Redis. A connection whose oldest command waited longer than `stallMs` is
 * dropped; reconnects back off exponentially (with jitter) up to `maxBackoffMs`.
 */
export interface RedisClientOptions {
  host: string;
  port: number;
  tls?: { servername: string; ca: string[] };
  username?: string;
  password?: string;
  db?: number;
  maxPending: number;
  connectTimeoutMs: number;
  stallMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
}

export type RedisState = 'connecting' | 'ready' | 'down' | 'closed';

/** Why a command got no reply: the limiter counts these by `reason`. */
export class RedisUnavailableError extends Error {
  constructor(readonly reason: 'unavailable' | 'queue_full' | 'connection_lost') {
    super(`redis ${reason}`);
    this.name = 'RedisUnavailableError';
  }
}

interface Pending {
  resolve(v: RespValue): void;
  reject(e: Error): void;
  sentAt: number;
}

/** A Lua script sent by EVALSHA, and by EVAL when Redis does not know it yet (NOSCRIPT: restart, flush, failover). */
export interface Script {
  source: string;
  sha: string;
}

export function script(source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') };
}

export class RedisClient extends EventEmitter {
  state: RedisState = 'down';
  /** Why the last connection attempt or connection failed (no credentials in it). */
  lastError = '';
  private socket?: net.Socket;
  private readonly parser = new RespParser();
  private pending: Pending[] = [];
  private head = 0;
  private attempts = 0;
  private reconnectTimer?: NodeJS.Timeout;
  private stallTimer?: NodeJS.Timeout;
  private corked = false;

  constructor(private readonly opts: RedisClientOptions) {
    super();
  }

  get inFlight(): number {
    return this.pending.length - this.head;
  }

  connect(): void {
    if (this.state === 'closed' || this.state === 'connecting' || this.state === 'ready') return;
    this.state = 'connecting';
    const o = this.opts;
    const socket = o.tls
      ? tls.connect({ host: o.host, port: o.port, servername: o.tls.servername, ca: o.tls.ca })
      : net.connect({ host: o.host, port: o.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 10_000);
    socket.setTimeout(o.connectTimeoutMs, () => this.fail(socket, 'connect timeout'));
    socket.once(o.tls ? 'secureConnect' : 'connect', () => {
      socket.setTimeout(0);
      void this.handshake(socket);
    });
    socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(socket, err.code ?? err.message));
    socket.on('close', () => this.fail(socket, 'connection closed'));
  }

  /** Sends one command. Rejects at once (RedisUnavailableError) when not connected or the queue is full. */
  send(args: readonly (string | number)[]): Promise<RespValue> {
    if (this.state !== 'ready') return Promise.reject(new RedisUnavailableError('unavailable'));
    return this.write(args);
  }

  /** EVALSHA, falling back to EVAL once when the server has not cached the script. Error replies reject. */
  async evalScript(s: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<RespValue> {
    let reply = await this.send(['EVALSHA', s.sha, keys.length, ...keys, ...args]);
    if (reply instanceof RespError && reply.message.startsWith('NOSCRIPT')) reply = await this.send(['EVAL', s.source, keys.length, ...keys, ...args]);
    if (reply instanceof RespError) throw reply;
    return reply;
  }

  close(): void {
    this.state = 'closed';
    clearTimeout(this.reconnectTimer);
    clearInterval(this.stallTimer);
    this.socket?.destroy();
    this.rejectAll();
  }

  private write(args: readonly (string | number)[]): Promise<RespValue> {
    if (this.inFlight >= this.opts.maxPending) return Promise.reject(new RedisUnavailableError('queue_full'));
    const socket = this.socket!;
    if (!this.corked) {
      // Commands issued in the same tick (the scripts of one check, concurrent requests) leave in one write.
      this.corked = true;
      socket.cork();
      process.nextTick(() => {
        this.corked = false;
        socket.uncork();
      });
    }
    return new Promise<RespValue>((resolve, reject) => {
      this.pending.push({ resolve, reject, sentAt: Date.now() });
      socket.write(encodeCommand(args));
    });
  }

  private async handshake(socket: net.Socket): Promise<void> {
    const o = this.opts;
    try {
      const steps: Array<readonly (string | number)[]> = [];
      if (o.password !== undefined) steps.push(o.username ? ['AUTH', o.username, o.password] : ['AUTH', o.password]);
      if (o.db) steps.push(['SELECT', o.db]);
      steps.push(['PING']);
      for (const cmd of steps) {
        const reply = await this.write(cmd);
        // The server's message, never the command: AUTH carries the password.
        if (reply instanceof RespError) return this.fail(socket, `${String(cmd[0])} refused: ${reply.message.split(' ')[0]}`);
      }
    } catch {
      return; // the connection failed meanwhile; fail() already ran
    }
    if (this.socket !== socket || this.state !== 'connecting') return;
    this.state = 'ready';
    this.attempts = 0;
    this.stallTimer = setInterval(() => this.checkStall(socket), Math.max(10, Math.floor(o.stallMs / 4)));
    this.stallTimer.unref();
    this.emit('ready');
  }

  private onData(socket: net.Socket, chunk: Buffer): void {
    if (this.socket !== socket) return;
    let replies: RespValue[];
    try {
      replies = this.parser.push(chunk);
    } catch (err) {
      return this.fail(socket, (err as Error).message);
    }
    for (const r of replies) {
      const p = this.pending[this.head];
      if (!p) return this.fail(socket, 'reply without a command');
      this.pending[this.head++] = undefined as unknown as Pending;
      p.resolve(r);
    }
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head > 1024) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
  }

  private checkStall(socket: net.Socket): void {
    const oldest = this.pending[this.head];
    if (oldest && Date.now() - oldest.sentAt > this.opts.stallMs) this.fail(socket, `no reply for ${this.opts.stallMs} ms`);
  }

  private fail(socket: net.Socket, reason: string): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    socket.destroy();
    clearInterval(this.stallTimer);
    this.parser.reset();
    this.rejectAll();
    if (this.state === 'closed') return;
    const wasReady = this.state === 'ready';
    this.state = 'down';
    this.lastError = reason;
    this.emit('down', reason, wasReady);
    const o = this.opts;
    const delay = Math.min(o.maxBackoffMs, o.minBackoffMs * 2 ** Math.min(this.attempts++, 16));
    this.reconnectTimer = setTimeout(() => this.connect(), Math.round(delay * (0.5 + Math.random() / 2)));
    this.reconnectTimer.unref();
  }

  private rejectAll(): void {
    const lost = this.pending.slice(this.head);
    this.pending = [];
    this.head = 0;
    const err = new RedisUnavailableError('connection_lost');
    for (const p of lost) p.reject(err);
  }
}
