// A graphql-transport-ws client: one WebSocket on /graphql for every
// subscription of the page, authenticated in connection_init, answered
// pings, and reconnected (with a fresh token and every live subscription
// started again) when the server closes it, e.g. as the access token
// expires.

import * as session from './session.js';

const PROTOCOL = 'graphql-transport-ws';
let ws = null;
let acked = false;
let nextId = 1;
let retry = 500;
const subs = new Map();

/** Shown on <body data-live>: connected, connecting or off. */
function mark(state) {
  document.body.dataset.live = state;
}

function send(msg) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
}

function start(id, sub) {
  send({ id, type: 'subscribe', payload: { query: sub.query, variables: sub.variables } });
}

let opening = false;

async function connect() {
  if (ws || opening) return;
  opening = true;
  let token;
  try {
    token = await session.token();
  } catch {
    return; // signed out: nothing to connect for
  } finally {
    opening = false;
  }
  if (ws || !subs.size) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`;
  const sock = new WebSocket(url, PROTOCOL);
  ws = sock;
  acked = false;
  mark('connecting');
  sock.onopen = () => sock.send(JSON.stringify({
    type: 'connection_init', payload: { Authorization: `Bearer ${token}` },
  }));
  sock.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch { return; }
    if (m.type === 'connection_ack') {
      acked = true;
      retry = 500;
      for (const [id, sub] of subs) {
        if (sub.started) sub.restarted?.();
        sub.started = true;
        start(id, sub);
      }
      mark('connected');
    } else if (m.type === 'ping') {
      sock.send(JSON.stringify({ type: 'pong' }));
    } else if (m.type === 'next') {
      subs.get(m.id)?.next(m.payload?.data, m.payload?.errors);
    } else if (m.type === 'error') {
      const sub = subs.get(m.id);
      subs.delete(m.id);
      sub?.error?.(m.payload);
    } else if (m.type === 'complete') {
      const sub = subs.get(m.id);
      subs.delete(m.id);
      sub?.complete?.();
    }
  };
  sock.onclose = () => {
    if (ws !== sock) return; // closed on purpose, or already replaced
    ws = null;
    acked = false;
    if (subs.size && session.signedIn()) {
      mark('connecting');
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10_000);
    } else {
      mark('off');
    }
  };
}

/**
 * Subscribes; `handlers.next(data)` per event, `handlers.restarted()`
 * after a reconnection (events may have been missed: reload), optional
 * `error` and `complete`. Returns a function that ends the subscription.
 */
export function subscribe(query, variables, handlers) {
  const id = String(nextId++);
  subs.set(id, { query, variables, started: false, ...handlers });
  if (acked) {
    subs.get(id).started = true;
    start(id, subs.get(id));
  } else {
    connect();
  }
  return () => {
    if (subs.delete(id)) send({ id, type: 'complete' });
    if (!subs.size && ws) {
      const sock = ws;
      ws = null;
      acked = false;
      sock.close(1000, 'done');
      mark('off');
    }
  };
}

/** Closes the socket (sign-out). */
export function closeAll() {
  subs.clear();
  const sock = ws;
  ws = null;
  acked = false;
  if (sock) sock.close(1000, 'signed out');
  mark('off');
}
