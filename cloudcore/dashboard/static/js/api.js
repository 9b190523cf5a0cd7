// The dashboard's only way to data: /api/v1 with the operator's bearer token.
import { useEffect, useState } from './html.js';

const TOKEN_KEY = 'edgefleet.token';
const API = '/api/v1';

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  signOut: () => { sessionStorage.removeItem(TOKEN_KEY); window.dispatchEvent(new Event('edgefleet:signed-out')); },
};

/** A refused call: `error` and, when one field is at fault, `field` (the API's {error, field}). */
export class ApiFailure extends Error {
  constructor(status, error, field) {
    super(error);
    this.status = status;
    this.field = field;
  }
}

function headers(extra = {}) {
  return { authorization: `Bearer ${session.token() ?? ''}`, ...extra };
}

async function failure(res) {
  let body;
  try { body = await res.json(); } catch { body = undefined; }
  if (res.status === 401) session.signOut();
  return new ApiFailure(res.status, body?.error ?? `HTTP ${res.status}`, body?.field);
}

export async function apiGet(path, { signal, text = false } = {}) {
  const res = await fetch(API + path, { headers: headers(), signal });
  if (!res.ok) throw await failure(res);
  return text ? res.text() : res.json();
}

/** GET that answers null for 404 (optional features such as rollouts). */
export async function apiGetOptional(path, opts) {
  try {
    return await apiGet(path, opts);
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 404) return null;
    throw err;
  }
}

export async function apiSend(method, path, body, contentType = 'application/json') {
  const res = await fetch(API + path, { method, headers: headers({ 'content-type': contentType }), body: JSON.stringify(body) });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/**
 * Follows one NDJSON watch stream (`?watch=true`) until it ends. fetch + ReadableStream rather
 * than EventSource, because EventSource cannot send the Authorization header.
 */
export async function followWatch(path, onEvent, signal) {
  const res = await fetch(API + path, { headers: headers(), signal });
  if (!res.ok) throw await failure(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line.trim()) onEvent(JSON.parse(line));
    }
  }
}

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

/**
 * Data that stays current without a reload. `load(signal)` fetches everything the page shows;
 * `watches(data)` names the watch streams to follow from the revision just loaded
 * (`[{path, match?}]`). Any matching event reloads (at most every `throttleMs`); a dropped
 * stream is reopened with back-off after a fresh load. `refreshMs` also reloads on a timer,
 * for what lives in memory and has no watch (link quality, resource samples, telemetry).
 */
export function useLive(load, deps, { watches, refreshMs = 15_000, throttleMs = 500 } = {}) {
  const [state, setState] = useState({ data: undefined, error: undefined, live: false, updatedAt: undefined });
  useEffect(() => {
    const abort = new AbortController();
    const { signal } = abort;
    let timer;
    let running = false;
    let again = false;

    const fetchNow = async () => {
      const data = await load(signal);
      if (!signal.aborted) setState((s) => ({ ...s, data, error: undefined, updatedAt: new Date() }));
      return data;
    };
    const reload = async () => {
      if (running) { again = true; return; }
      running = true;
      try {
        await fetchNow();
      } catch (error) {
        if (!signal.aborted) setState((s) => ({ ...s, error }));
      } finally {
        running = false;
        if (again && !signal.aborted) { again = false; schedule(0); }
      }
    };
    const schedule = (ms = throttleMs) => {
      if (timer !== undefined || signal.aborted) return;
      timer = setTimeout(() => { timer = undefined; void reload(); }, ms);
    };

    const supervise = async () => {
      for (let attempt = 0; !signal.aborted; attempt++) {
        let data;
        try {
          data = await fetchNow();
        } catch (error) {
          if (signal.aborted) return;
          setState((s) => ({ ...s, error, live: false }));
          await sleep(Math.min(1000 * 2 ** attempt, 15_000), signal);
          continue;
        }
        const streams = watches ? watches(data) : [];
        if (streams.length === 0) return;
        const round = new AbortController();
        const stop = () => round.abort();
        signal.addEventListener('abort', stop, { once: true });
        setState((s) => ({ ...s, live: true }));
        const onEvent = (match) => (event) => {
          attempt = 0;
          if (!match || match(event)) schedule();
        };
        // When one stream ends (server restart, compaction, network), reopen all from a fresh load.
        await Promise.race(streams.map(({ path, match }) => followWatch(path, onEvent(match), round.signal).catch(() => undefined)));
        round.abort();
        signal.removeEventListener('abort', stop);
        if (signal.aborted) return;
        setState((s) => ({ ...s, live: false }));
        await sleep(Math.min(500 * 2 ** attempt, 15_000), signal);
      }
    };

    void supervise();
    const refresher = refreshMs ? setInterval(() => schedule(0), refreshMs) : undefined;
    return () => {
      abort.abort();
      clearTimeout(timer);
      clearInterval(refresher);
    };
  }, deps);
  return state;
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;
