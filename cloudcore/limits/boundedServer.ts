import { createServer as createHttpServer, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions as HttpsOptions } from 'node:https';

/**
 * cloudcore's HTTP(S) server with every pre-login wait bounded: headers and the whole request
 * must arrive within their timeouts (a request still arriving then is answered 408 and its
 * connection closed), and an idle keep-alive connection is closed. Node checks these deadlines
 * every `connectionsCheckingInterval`; its default of 30 s would let a slow body live 30 s past
 * its deadline, so it is checked every second.
 *
 * Not bounded by time, on purpose: a response after its request has fully arrived (an exec may
 * run an hour, a watch stays open), and upgraded edge WebSockets (ws clears the socket timeout;
 * the hub's heartbeat ends silent ones). Those are bounded by count instead (ConnectionLimits,
 * StreamSlots, one link per node).
 */
export interface ServerTimeouts {
  requestTimeoutSeconds: number;
  headersTimeoutSeconds: number;
  keepAliveTimeoutSeconds: number;
}

const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

export function createBoundedServer(timeouts: ServerTimeouts, handler: RequestListener, tls?: HttpsOptions): Server {
  const options = {
    requestTimeout: timeouts.requestTimeoutSeconds * 1000,
    headersTimeout: timeouts.headersTimeoutSeconds * 1000,
    keepAliveTimeout: timeouts.keepAliveTimeoutSeconds * 1000,
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
  };
  const server = tls ? createHttpsServer({ ...tls, ...options }, handler) : createHttpServer(options, handler);
  // Set as properties too: not every Node version reads keepAliveTimeout from the options.
  server.keepAliveTimeout = options.keepAliveTimeout;
  server.requestTimeout = options.requestTimeout;
  server.headersTimeout = options.headersTimeout;
  return server;
}
