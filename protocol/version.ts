/**
 * Wire protocol version. Bump it when a frame changes incompatibly; adding an optional field
 * is compatible, as readers drop fields they do not know (docs/sync.md, Version skew).
 */
export const PROTOCOL_VERSION = 1;
/**
 * Set by the edge artefact build (arm-builds/, esbuild `define`) so two artefacts can differ only
 * in their version; undefined when running tsc's output from a checkout.
 */
declare const __EDGEFLEET_VERSION__: string | undefined;
/** Release version reported by every binary and in node status. */
export const EDGEFLEET_VERSION: string = typeof __EDGEFLEET_VERSION__ === 'string' ? __EDGEFLEET_VERSION__ : '0.1.0';
/** Largest WebSocket frame either side accepts; larger frames close the link with 1009. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** Edge heartbeat period; the cloud marks a node Offline after OFFLINE_AFTER_MS of silence. */
export const HEARTBEAT_INTERVAL_MS = 30_000;
export const OFFLINE_AFTER_MS = 3 * HEARTBEAT_INTERVAL_MS;
