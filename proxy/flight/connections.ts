import type { Duplex } from 'node:stream';

/** What the connection bookkeeping needs of a request: the client connection it came on. */
export interface OnConnection {
  req: { socket: Duplex };
}

/**
 * The proxy's requests in flight and what each client connection carries: the requests not yet finished
 * (pipelined requests share one), the turn they wait for, and whether the connection can carry another request.
 */
export class Connections<F extends OnConnection = OnConnection> {
  /** Every request not yet finished, for the drain. */
  readonly inFlight = new Set<F>();
  private readonly bySocket = new WeakMap<Duplex, Set<F>>();
  /** Connections whose parser failed behind requests still answering: closed once those are done. */
  private readonly closing = new WeakSet<Duplex>();
  /**
   * Connections where a request was refused with its body unread (bad framing, too large): whatever the parser
   * read after it is not forwarded, since another parser may draw the boundary elsewhere.
   */
  private readonly refused = new WeakSet<Duplex>();
  /**
   * Pipelined requests waiting for the one ahead of them on their connection: a connection has one request with the
   * upstream at a time, as nginx and Envoy serve pipelining, so one connection cannot fan out.
   */
  private readonly waiting = new WeakMap<Duplex, Array<() => void>>();

  add(flight: F): void {
    this.inFlight.add(flight);
    const socket = flight.req.socket;
    let mine = this.bySocket.get(socket);
    if (!mine) this.bySocket.set(socket, (mine = new Set()));
    mine.add(flight);
  }

  /** Runs `start` now, or once the requests ahead of `flight` on its connection are finished. */
  takeTurn(flight: F, start: () => void): void {
    const socket = flight.req.socket;
    if ((this.bySocket.get(socket)?.size ?? 0) <= 1) return start();
    let queue = this.waiting.get(socket);
    if (!queue) this.waiting.set(socket, (queue = []));
    queue.push(start);
  }

  /** The request is finished: the connection closes if it was due to, else the next pipelined request gets its turn. */
  remove(flight: F): void {
    this.inFlight.delete(flight);
    const socket = flight.req.socket;
    const others = this.bySocket.get(socket);
    others?.delete(flight);
    if (this.closing.has(socket) && !others?.size) socket.end();
    const next = this.waiting.get(socket)?.shift();
    if (next) setImmediate(next);
  }

  /** The unfinished requests of a connection, oldest first. */
  on(socket: Duplex): F[] {
    return [...(this.bySocket.get(socket) ?? [])];
  }

  closeWhenIdle(socket: Duplex): void {
    this.closing.add(socket);
  }

  refuseRest(socket: Duplex): void {
    this.refused.add(socket);
  }

  refusesRest(socket: Duplex): boolean {
    return this.refused.has(socket);
  }
}
