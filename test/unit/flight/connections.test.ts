import { PassThrough } from 'node:stream';
import { Connections, type OnConnection } from '../../../proxy/flight/connections';

const on = (socket: PassThrough): OnConnection => ({ req: { socket } });
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('Connections: what each client connection carries', () => {
  it('the first request on a connection starts at once; a pipelined one waits until the one ahead finishes', async () => {
    const conns = new Connections();
    const socket = new PassThrough();
    const first = on(socket);
    const second = on(socket);
    const started: string[] = [];
    conns.add(first);
    conns.takeTurn(first, () => started.push('first'));
    conns.add(second);
    conns.takeTurn(second, () => started.push('second'));
    expect(started).toEqual(['first']);
    expect(conns.on(socket)).toEqual([first, second]);
    conns.remove(first);
    await nextTurn();
    expect(started).toEqual(['first', 'second']);
    expect(conns.inFlight.size).toBe(1);
  });

  it('requests on different connections do not wait for each other', () => {
    const conns = new Connections();
    const a = on(new PassThrough());
    const b = on(new PassThrough());
    const started: OnConnection[] = [];
    for (const f of [a, b]) {
      conns.add(f);
      conns.takeTurn(f, () => started.push(f));
    }
    expect(started).toEqual([a, b]);
  });

  it('a connection due to close ends once its last request is finished', () => {
    const conns = new Connections();
    const socket = new PassThrough();
    const ended = jest.fn();
    socket.on('finish', ended);
    const a = on(socket);
    const b = on(socket);
    conns.add(a);
    conns.add(b);
    conns.closeWhenIdle(socket);
    conns.remove(a);
    expect(socket.writableEnded).toBe(false);
    conns.remove(b);
    expect(socket.writableEnded).toBe(true);
  });

  it('remembers a connection whose rest is refused', () => {
    const conns = new Connections();
    const socket = new PassThrough();
    expect(conns.refusesRest(socket)).toBe(false);
    conns.refuseRest(socket);
    expect(conns.refusesRest(socket)).toBe(true);
    expect(conns.refusesRest(new PassThrough())).toBe(false);
  });
});
