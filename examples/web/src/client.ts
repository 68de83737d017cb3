// The demo pages' GraphQL client: urql with the generated typed documents, queries
// and mutations over HTTP, subscriptions over WebSocket with the npm `graphql-ws`
// client (reconnecting forever, with backoff). Every subscription resumes where it
// stopped after a reconnect, here and only here (`resuming` below): the pages
// subscribe once and never pass `afterSeq` or `after` themselves.
import {
  Client,
  CombinedError,
  fetchExchange,
  subscriptionExchange,
  type AnyVariables,
  type Operation,
  type OperationResult,
  type SubscriptionForwarder,
  type TypedDocumentNode,
} from '@urql/core';
import { createClient as createWsClient, type Client as WsClient } from 'graphql-ws';

export const endpoint = `${location.origin}/graphql`;

/** A GraphQL error with its `extensions.code` (and `field`, `reason` when given). */
export class ApiError extends Error {
  readonly code: string;
  readonly field: string | undefined;
  readonly reason: string | undefined;

  constructor(error: { message: string; extensions?: Readonly<Record<string, unknown>> | undefined }) {
    super(error.message);
    const text = (key: string) => {
      const value = error.extensions?.[key];
      return typeof value === 'string' ? value : undefined;
    };
    this.code = text('code') ?? 'INTERNAL';
    this.field = text('field');
    this.reason = text('reason');
  }
}

/** The server could not be reached, or did not answer with GraphQL. */
export class Unreachable extends Error {
  constructor(cause: unknown) {
    super("Can't reach the server.", { cause });
  }
}

/** urql's combined error as one of ours: the first GraphQL error, or `Unreachable`. */
function failure(error: CombinedError): ApiError | Unreachable {
  const [first] = error.graphQLErrors;
  return first ? new ApiError(first) : new Unreachable(error.networkError ?? error);
}

export interface Api {
  /** Run a query; rejects with an `ApiError`, or `Unreachable`. */
  query<Data, Variables extends AnyVariables>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
  ): Promise<Data>;
  /** Run a mutation; rejects with an `ApiError`, or `Unreachable`. */
  mutate<Data, Variables extends AnyVariables>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
  ): Promise<Data>;
  /**
   * Subscribe until the returned function is called, or the server ends the stream.
   * After a dropped connection the stream resumes where it stopped: nothing missed,
   * nothing twice.
   */
  subscribe<Data, Variables extends AnyVariables>(
    document: TypedDocumentNode<Data, Variables>,
    variables: Variables,
    onData: (data: Data) => void,
    onError?: (error: ApiError | Unreachable) => void,
  ): () => void;
}

export interface Options {
  /** The bearer token, read at every request and every (re)connection. */
  token: () => string | null | undefined;
  /** Told when the socket drops (`false`) and when it is back (`true`). */
  onStatus?: (connected: boolean) => void;
}

/**
 * A client for one page. The WebSocket opens with the first subscription; it
 * reconnects forever, waiting 0.5 s, 1 s, 2 s … up to 15 s (with jitter).
 */
export function createApi({ token, onStatus = () => {} }: Options): Api {
  const socket = createWsClient({
    url: endpoint.replace(/^http/, 'ws'),
    connectionParams: () => ({ authorization: `Bearer ${token() ?? ''}` }),
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
  const client = new Client({
    url: endpoint,
    // No cache: every query asks the server, and live data comes by subscription.
    exchanges: [subscriptionExchange({ forwardSubscription: resuming(socket) }), fetchExchange],
    requestPolicy: 'network-only',
    preferGetMethod: false,
    fetchOptions: (): RequestInit => {
      const bearer = token();
      return { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} };
    },
  });
  const answer = <Data>(result: OperationResult<Data>): Data => {
    if (result.error) throw failure(result.error);
    if (result.data === undefined) throw new Unreachable(new Error('an answer with no data'));
    return result.data;
  };
  return {
    query: async (document, variables) => answer(await client.query(document, variables).toPromise()),
    mutate: async (document, variables) => answer(await client.mutation(document, variables).toPromise()),
    subscribe(document, variables, onData, onError = console.error) {
      const { unsubscribe } = client.subscription(document, variables).subscribe((result) => {
        if (result.error) onError(failure(result.error));
        else if (result.data !== undefined) onData(result.data);
      });
      return unsubscribe;
    },
  };
}

/**
 * Hands urql's subscriptions to `graphql-ws`, resuming each after a reconnect.
 *
 * `graphql-ws` sends every active subscription again when it reconnects, and reads
 * the payload anew each time: the payload's `variables` are a getter. The resume
 * argument is found in the document: the variable bound to the root field's
 * `afterSeq` (`messages`) or `after` (`conversationEvents`, `inbox`,
 * `escalations`). The layer remembers the root field's `seq` or `cursor` of each
 * result it delivers (select it in the operation), and from then on the variable is
 * that: the server replays what came after it, then goes live, with no gap and no
 * duplicate. A fresh subscription starts from the variables the page gave.
 */
function resuming(socket: WsClient): SubscriptionForwarder {
  return (request, operation) => {
    const resume = resumeArgument(operation);
    let last: string | number | undefined;
    const payload = {
      query: request.query ?? '',
      operationName: request.operationName,
      extensions: request.extensions,
      get variables(): Record<string, unknown> | undefined {
        if (!resume || last === undefined) return request.variables;
        return { ...request.variables, [resume.variable]: last };
      },
    };
    const remember = (data: unknown) => {
      if (!resume || !isRecord(data)) return;
      const root = data[resume.field];
      const value = isRecord(root) ? root[resume.from] : undefined;
      if (resume.from === 'seq' && typeof value === 'number') {
        last = Math.max(value, typeof last === 'number' ? last : 0);
      } else if (resume.from === 'cursor' && typeof value === 'string') {
        last = value;
      }
    };
    return {
      subscribe(sink) {
        const unsubscribe = socket.subscribe<Record<string, unknown>, Record<string, unknown>>(payload, {
          next(result) {
            remember(result.data);
            sink.next(result);
          },
          error: (error) => sink.error(error),
          complete: () => sink.complete(),
        });
        return { unsubscribe };
      },
    };
  };
}

/** Where a subscription resumes from: the variable to fill, and with what. */
interface Resume {
  /** The operation's variable bound to `afterSeq` or `after`. */
  variable: string;
  /** The root field's key in the result (its alias, or its name). */
  field: string;
  /** What of each result fills it: `seq` for `afterSeq`, `cursor` for `after`. */
  from: 'seq' | 'cursor';
}

function resumeArgument(operation: Operation): Resume | undefined {
  for (const definition of operation.query.definitions) {
    if (definition.kind !== 'OperationDefinition') continue;
    for (const selection of definition.selectionSet.selections) {
      if (selection.kind !== 'Field' || selection.name.value === '__typename') continue;
      for (const argument of selection.arguments ?? []) {
        const from = argument.name.value === 'afterSeq' ? 'seq' : argument.name.value === 'after' ? 'cursor' : undefined;
        if (from && argument.value.kind === 'Variable') {
          return { variable: argument.value.name.value, field: (selection.alias ?? selection.name).value, from };
        }
      }
      return undefined;
    }
  }
  return undefined;
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
