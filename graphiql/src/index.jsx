// Casefile's GraphiQL: the page GET /graphql serves. Queries and mutations go over
// HTTP POST to /graphql, subscriptions over WebSocket (graphql-transport-ws) to the
// same path, both with the headers typed in the headers editor, so
// {"Authorization": "Bearer cf_..."} signs in either way.
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { parse } from 'graphql';

const url = `${location.origin}/graphql`;
const subscriptionUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/graphql`;

// For a subscription the toolkit opens a graphql-ws client on subscriptionUrl and
// sends the headers editor's JSON of that moment as the connection_init payload.
// Casefile reads the token from its `authorization` key; header names are
// case-insensitive, so any spelling of Authorization is passed under that key
// (HTTP requests are unaffected by the renaming).
const fetcher = createGraphiQLFetcher({ url, subscriptionUrl });

function withAuthorization(headers) {
  if (!headers || typeof headers !== 'object') return headers;
  const out = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name.toLowerCase() === 'authorization' ? 'authorization' : name] = value;
  }
  return out;
}

// The toolkit sends an operation over WebSocket when opts.documentAST says it is a
// subscription named params.operationName. GraphiQL updates both only 100 ms after
// the last keystroke, so an operation run right after an edit can carry the previous
// query's AST and name (a subscription would go over HTTP, or fail as "Unknown
// operation"). So the AST is parsed from the query being sent, and a document with
// one operation is sent under that operation's name, as GraphiQL settles on anyway.
function casefileFetcher(params, opts = {}) {
  let { operationName } = params;
  let { documentAST } = opts;
  try {
    documentAST = parse(params.query);
    const operations = documentAST.definitions.filter((d) => d.kind === 'OperationDefinition');
    if (operations.length === 1) operationName = operations[0].name?.value;
  } catch {
    // Not valid GraphQL: the server says what is wrong.
  }
  return fetcher({ ...params, operationName }, { ...opts, documentAST, headers: withAuthorization(opts.headers) });
}

const plugins = [explorerPlugin()];

createRoot(document.getElementById('graphiql')).render(
  <GraphiQL fetcher={casefileFetcher} plugins={plugins} />,
);
