/**
 * What the link presents to cloudcore at a connect: TLS material for mutual TLS (the cloud CA
 * bundle to verify the server, the node's certificate and key), or a bearer credential (a cloud
 * on plain HTTP). Asked for at every connect, so a renewed identity is used by the next one.
 */
export type LinkAuth =
  | { mode: 'certificate'; ca: string; cert: string; key: string }
  | { mode: 'bearer'; credential: string };
