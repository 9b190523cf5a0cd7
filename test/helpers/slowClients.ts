import { connect, type Socket } from 'node:net';

/**
 * Raw TCP clients that misbehave on purpose (attack tests): each opens a connection from a
 * given loopback source address, writes `prefix` and then nothing more. The helper records when
 * each one was closed and what the server answered before closing it.
 */
export interface SlowClient {
  socket: Socket;
  localAddress: string;
  /** Date.now() once connected; undefined while connecting or if it never connected. */
  connectedAt: number | undefined;
  /** Date.now() when the socket closed; undefined while it is open. */
  closedAt: number | undefined;
  /** Everything the server sent. */
  received: string;
}

export function openSlowClient(port: number, localAddress: string, prefix: string): SlowClient {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  const client: SlowClient = { socket, localAddress, connectedAt: undefined, closedAt: undefined, received: '' };
  socket.setEncoding('utf8');
  socket.on('connect', () => {
    client.connectedAt = Date.now();
    if (prefix) socket.write(prefix);
  });
  socket.on('data', (chunk: string) => { client.received += chunk; });
  socket.on('error', () => undefined); // a reset is what a refused client sees; closedAt records it
  socket.on('close', () => { client.closedAt = Date.now(); });
  return client;
}

/** A join request whose headers promise a body of 100 bytes, of which only the first few ever arrive. */
export const UNFINISHED_JOIN = 'POST /hub/v1/join HTTP/1.1\r\nHost: cloud\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"node":"x';
