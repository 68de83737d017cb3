// A thin layer over Casefile's GraphQL API for the demo pages: queries and
// mutations over HTTP, subscriptions over WebSocket with the npm `graphql-ws`
// client (reconnecting with backoff), and typed errors.
import { createClient } from 'graphql-ws';

export const endpoint = `${location.origin}/graphql`;

/** A GraphQL error with its `extensions.code`. */
export class ApiError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.extensions?.code ?? 'INTERNAL';
    this.field = error.extensions?.field;
    this.reason = error.extensions?.reason;
  }
}

/** Run a query or mutation; rejects with an ApiError, or a TypeError when offline. */
export async function gql(query, variables = {}, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(endpoint, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = await response.json();
  if (body.errors?.length) throw new ApiError(body.errors[0]);
  return body.data;
}

/**
 * A live connection. `onStatus(connected)` reports drops and recoveries; the client
 * reconnects forever, waiting 0.5 s, 1 s, 2 s … up to 15 s (with jitter).
 */
export function live(getToken, onStatus) {
  return createClient({
    url: endpoint.replace(/^http/, 'ws'),
    connectionParams: () => ({ authorization: `Bearer ${getToken()}` }),
    lazy: true,
    keepAlive: 20_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      const wait = Math.min(15_000, 500 * 2 ** retries) * (0.75 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, wait));
    },
    on: {
      connected: () => onStatus(true),
      closed: () => onStatus(false),
    },
  });
}

/** Subscribe; `payload` may compute its variables on each (re)subscription. */
export function subscribe(client, payload, onData, onError = console.error) {
  return client.subscribe(payload, {
    next: ({ data, errors }) => (errors?.length ? onError(new ApiError(errors[0])) : onData(data)),
    error: (error) => onError(Array.isArray(error) ? new ApiError(error[0]) : error),
    complete: () => {},
  });
}

/** A tiny element builder: el('p', { class: 'x' }, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

/** Message text with `> quote` lines as block quotes (the AI quotes the docs). */
export function rich(text) {
  const out = el('div', { class: 'text' });
  let quote = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('> ')) {
      quote ??= out.appendChild(el('blockquote'));
      quote.append(line.slice(2), el('br'));
    } else {
      quote = null;
      if (line.trim()) out.append(el('p', {}, line));
    }
  }
  return out;
}

export const uuid = () => crypto.randomUUID();

/** A count with its noun: plural(1, 'handoff') is "1 handoff", plural(2, 'handoff') "2 handoffs". */
export const plural = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** A server message as a sentence: a capital first letter and a closing period. */
export function sentence(text) {
  const s = String(text ?? '').trim();
  if (!s) return '';
  const capitalized = s[0].toUpperCase() + s.slice(1);
  return /[.!?…]$/.test(capitalized) ? capitalized : `${capitalized}.`;
}
