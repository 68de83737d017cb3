// The npm `graphql-ws` client against a real Casefile server: a visitor starts a
// conversation over HTTP, subscribes to its messages over WebSocket, sends a second
// message and sees both, in order; a subscription it may not make fails with
// NOT_FOUND. Prints one JSON line with what it saw; exits non-zero on any failure.
//
// Run by `cargo test` (tests/api/clients.rs) with CASEFILE_URL and WIDGET_KEY set.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const base = process.env.CASEFILE_URL;
const widgetKey = process.env.WIDGET_KEY;
const fail = (why) => { console.error(why); process.exit(1); };
setTimeout(() => fail('timed out'), 20_000).unref();

async function gql(query, variables, token) {
  const response = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) fail(`HTTP GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const started = await gql(
  'mutation($k: String!) { startConversation(input: { widgetKey: $k, message: "hello from node" }) { conversation { id } visitorToken } }',
  { k: widgetKey },
);
const conversationId = started.startConversation.conversation.id;
const token = started.startConversation.visitorToken;

const client = createClient({
  url: base.replace(/^http/, 'ws') + '/graphql',
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
});

const seen = await new Promise((resolve, reject) => {
  const bodies = [];
  const dispose = client.subscribe(
    { query: 'subscription($c: ID!) { messages(conversationId: $c) { seq author body } }', variables: { c: conversationId } },
    {
      next: async ({ data, errors }) => {
        if (errors) return reject(new Error(JSON.stringify(errors)));
        bodies.push(data.messages);
        if (data.messages.seq === 1) {
          await gql('mutation($c: ID!) { sendMessage(input: { conversationId: $c, body: "second" }) { seq } }', { c: conversationId }, token);
        }
        if (bodies.length === 2) { dispose(); resolve(bodies); }
      },
      error: (err) => reject(err),
      complete: () => {},
    },
  );
});

const refused = await new Promise((resolve) => {
  client.subscribe(
    { query: 'subscription { messages(conversationId: "conv_01ARZ3NDEKTSV4RRFFQ69G5FAV") { seq } }' },
    {
      next: () => resolve('unexpected data'),
      error: (errors) => resolve(errors?.[0]?.extensions?.code ?? String(errors)),
      complete: () => resolve('completed without error'),
    },
  );
});

await client.dispose();
console.log(JSON.stringify({ seen, refused }));
