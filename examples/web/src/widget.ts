// The chat widget: start a conversation with the widget key, see the AI's cited
// answers (a model's as it writes them), ask for a person, leave lead details, and
// resume after a reload with no lost or doubled message.
import { ApiError, createApi, isRecord, Unreachable } from './client';
import { byId, el, rich, sourceList } from './dom';
import {
  CaptureLeadDocument,
  ConfirmAnswerDocument,
  LeadFieldsDocument,
  RequestHumanDocument,
  SendMessageDocument,
  SetTypingDocument,
  StartConversationDocument,
  WidgetConversationDocument,
  WidgetEventsDocument,
  WidgetMessagesDocument,
  type Author,
  type LeadFieldsQuery,
  type WidgetEventsSubscription,
  type WidgetMessagesSubscription,
} from './gql/graphql';

type Message = WidgetMessagesSubscription['messages'];
type AnswerDelta = Extract<WidgetEventsSubscription['conversationEvents'], { __typename: 'AnswerDelta' }>;
type LeadField = LeadFieldsQuery['leadFields'][number];

const ui = {
  banner: byId('banner', HTMLElement),
  messages: byId('messages', HTMLOListElement),
  typing: byId('typing', HTMLElement),
  who: byId('who', HTMLElement),
  human: byId('human', HTMLButtonElement),
  details: byId('details', HTMLButtonElement),
  lead: byId('lead', HTMLFormElement),
  composer: byId('composer', HTMLFormElement),
  input: byId('input', HTMLTextAreaElement),
  account: byId('account', HTMLElement),
  signin: byId('signin', HTMLButtonElement),
};

const widgetKey =
  document.querySelector<HTMLMetaElement>('meta[name="casefile-widget-key"]')?.content ??
  new URLSearchParams(location.search).get('key');
const storeKey = `casefile.widget.${widgetKey}`;

/** Who the site says the visitor is (from its backend; here `/demo/identity`). */
interface Identity {
  identityToken: string;
  name: string;
}

/** What survives a reload, in localStorage. */
interface Saved {
  visitorId: string | undefined;
  conversationId: string | undefined;
  token: string | undefined;
  identity: Identity | undefined;
}

function isIdentity(value: unknown): value is Identity {
  return isRecord(value) && typeof value.identityToken === 'string' && typeof value.name === 'string';
}

function load(): Saved {
  let saved: unknown;
  try {
    saved = JSON.parse(localStorage.getItem(storeKey) ?? '{}');
  } catch {
    saved = {};
  }
  const text = (key: string) => (isRecord(saved) && typeof saved[key] === 'string' ? saved[key] : undefined);
  const identity = isRecord(saved) ? saved.identity : undefined;
  return {
    visitorId: text('visitorId'),
    conversationId: text('conversationId'),
    token: text('token'),
    identity: isIdentity(identity) ? identity : undefined,
  };
}

// The visitor id comes from the server, and only counts with a token that proves it.
const state = { ...load(), lastSeq: 0 };
const save = () => {
  const { visitorId, conversationId, token, identity } = state;
  localStorage.setItem(storeKey, JSON.stringify({ visitorId, conversationId, token, identity } satisfies Saved));
};
save();

const shown = new Map<number, HTMLLIElement>(); // seq → element: a message is never shown twice
const api = createApi({
  token: () => state.token,
  onStatus: (connected) => banner(connected ? null : "Can't reach the server. Reconnecting…"),
});

function banner(text: string | null) {
  ui.banner.hidden = !text;
  ui.banner.textContent = text ?? '';
}

// Whether a person from the team has the chat: then "Talk to a person" would only ask
// again. Known from the conversation's status (read when connecting, then its status
// changes) and from the messages that say so (an agent joined or wrote, the AI
// answered, the chat went back to the AI). The newest signal wins, by `seq`; on a tie
// the status does, as it also knows what no message says (an agent resolving).
const control = { seq: -1, fromStatus: false };
function personHere(here: boolean, seq: number, fromStatus: boolean) {
  if (seq < control.seq || (seq === control.seq && control.fromStatus && !fromStatus)) return;
  Object.assign(control, { seq, fromStatus });
  ui.human.disabled = here;
  ui.human.title = here ? 'A person from the team is already here.' : '';
}

const joined = (message: Message) => message.author === 'AGENT' ||
  (message.author === 'SYSTEM' && / joined the conversation\.$/.test(message.body));
const backToAi = (message: Message) => message.author === 'AI' ||
  (message.author === 'SYSTEM' && message.body.includes('chatting with the AI assistant again'));

// A model's answer as it is written: `AnswerDelta` pieces, by the visitor message
// they answer. A piece that starts past what is shown means one was missed: the
// draft stops growing and waits for the stored answer, which replaces it.
interface Draft {
  item: HTMLLIElement;
  body: HTMLDivElement;
  text: string;
  chars: number;
  broken: boolean;
}
const drafts = new Map<number, Draft>(); // replyToSeq → the draft
function draft({ replyToSeq, offset, text }: AnswerDelta) {
  let d = drafts.get(replyToSeq);
  if (!d) {
    if (offset !== 0 || [...shown.values()].some((m) => m.dataset.replyToSeq === String(replyToSeq))) return;
    const body = el('div', { class: 'text' });
    const item = el('li', { class: 'message ai streaming', 'data-reply-to-seq': replyToSeq },
      el('span', { class: 'author' }, 'AI assistant'), body);
    d = { item, body, text: '', chars: 0, broken: false };
    drafts.set(replyToSeq, d);
    ui.messages.append(item);
  }
  if (d.broken) return;
  const pieces = [...text];
  if (offset > d.chars) { d.broken = true; return; }
  const fresh = pieces.slice(d.chars - offset).join(''); // a piece seen twice adds nothing
  d.text += fresh;
  d.chars += pieces.length - Math.min(pieces.length, d.chars - offset);
  d.body.textContent = d.text;
  ui.typing.hidden = true;
  d.item.scrollIntoView({ block: 'end' });
}
// A stored answer replaces its draft; a person taking the chat ends every draft
// (the model's request was abandoned).
function endDrafts(upTo = Infinity) {
  for (const [seq, d] of drafts) {
    if (seq <= upTo) { d.item.remove(); drafts.delete(seq); }
  }
}

function render(message: Message) {
  if (message.author === 'AI' && message.replyToSeq != null) endDrafts(message.replyToSeq);
  if (message.author === 'AGENT') endDrafts();
  if (shown.has(message.seq)) return;
  if (joined(message)) personHere(true, message.seq, false);
  else if (backToAi(message)) personHere(false, message.seq, false);
  const labels: Record<Author, string> = {
    VISITOR: 'You', AI: 'AI assistant', SYSTEM: '', AGENT: message.agent?.name ?? 'Agent',
  };
  const label = labels[message.author];
  const item = el('li', {
    class: `message ${message.author.toLowerCase()}`, 'data-seq': message.seq, 'data-reply-to-seq': message.replyToSeq,
  },
  label ? el('span', { class: 'author' }, label) : null,
  rich(message.body),
  message.sources.length ? sourceList(message.sources) : null);
  if (message.author === 'AGENT') ui.who.textContent = `${message.agent?.name ?? 'An agent'} from Inkwell`;
  if (message.author === 'AI' && message.id) askIfItHelped(item, message);
  // Only the AI's latest answer asks; anything said after it ends the question.
  if (message.seq === Math.max(message.seq, state.lastSeq)) {
    for (const old of document.querySelectorAll('.confirm')) if (!item.contains(old)) old.remove();
  }
  const later = [...shown.keys()].filter((seq) => seq > message.seq).sort((a, b) => a - b)[0];
  ui.messages.insertBefore(item, later === undefined ? null : shown.get(later) ?? null);
  shown.set(message.seq, item);
  state.lastSeq = Math.max(state.lastSeq, message.seq);
  item.scrollIntoView({ block: 'end' });
}

// "Did that answer your question?" under the AI's latest answer: yes resolves the
// chat as answered by the AI; no tells the AI, which hands the chat to a person
// when the workspace's policy says so.
function askIfItHelped(item: HTMLLIElement, message: Message) {
  const conversationId = state.conversationId;
  if (!conversationId) return;
  const answer = (helpful: boolean) => async () => {
    try {
      await api.mutate(ConfirmAnswerDocument, { conversationId, messageId: message.id, helpful });
      ask.replaceChildren(helpful ? 'Glad it helped.' : 'Thanks for telling us.');
    } catch (error) {
      showError(error);
    }
  };
  const ask = el('div', { class: 'confirm' }, 'Did that answer your question? ',
    el('button', { type: 'button', class: 'yes', onclick: answer(true) }, 'Yes'),
    el('button', { type: 'button', class: 'no', onclick: answer(false) }, 'No'));
  item.append(ask);
}

// Subscribes once: after a dropped connection the client's subscription layer
// resumes each stream (messages after the last `seq` shown, events after the last
// cursor), so nothing here deals with reconnecting.
function connect(conversationId: string) {
  api.subscribe(WidgetMessagesDocument, { conversationId }, (data) => render(data.messages), showError);
  api.subscribe(WidgetEventsDocument, { conversationId }, ({ conversationEvents: event }) => {
    switch (event.__typename) {
      case 'AnswerDelta':
        draft(event);
        return;
      case 'ConversationStatusChanged':
        if (event.status === 'HUMAN') endDrafts();
        personHere(event.status === 'HUMAN', event.conversation.lastSeq, true);
        return;
      case 'TypingEvent': {
        if (event.author === 'VISITOR') return;
        ui.typing.hidden = !event.typing;
        const who = event.author === 'AI' ? 'AI assistant' : (event.agent?.name ?? 'Someone');
        ui.typing.textContent = `${who} is typing…`;
        return;
      }
      default:
        return;
    }
  }, showError);
  // Who has the chat now (a reload after an agent resolved it shows no message saying so).
  api.query(WidgetConversationDocument, { id: conversationId })
    .then(({ conversation: c }) => {
      if (state.conversationId === conversationId) personHere(c.status === 'HUMAN', c.lastSeq, true);
    })
    .catch(() => {});
}

function showError(error: unknown) {
  if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
    // The visitor token expired: start over.
    localStorage.removeItem(storeKey);
    banner('This chat has expired. Reload the page to start a new one.');
  } else if (error instanceof Unreachable) {
    banner("Can't reach the server. Check your connection and try again.");
  } else {
    banner(error instanceof Error ? error.message : String(error));
  }
}

async function send(body: string) {
  if (!state.conversationId) {
    if (!widgetKey) throw new Error('No widget key.');
    const cms = document.body.dataset;
    // A signed-in visitor's conversation starts from the site's identity token;
    // state.token is unset then (signing in clears it).
    const { startConversation: started } = await api.mutate(StartConversationDocument, {
      input: {
        widgetKey, visitorId: state.visitorId, message: body, identityToken: state.identity?.identityToken,
        context: { pageUrl: location.href, cms: cms.cms, cmsVersion: cms.cmsVersion, title: document.title },
      },
    });
    state.visitorId = started.visitorId;
    state.conversationId = started.conversation.id;
    state.token = started.visitorToken;
    save();
    connect(started.conversation.id);
    return;
  }
  await api.mutate(SendMessageDocument,
    { input: { conversationId: state.conversationId, body, clientMessageId: crypto.randomUUID() } });
}

let typingTimer: ReturnType<typeof setTimeout> | undefined;
ui.input.addEventListener('input', () => {
  const conversationId = state.conversationId;
  if (!conversationId) return;
  const typing = (value: boolean) => api.mutate(SetTypingDocument, { conversationId, typing: value }).catch(() => {});
  if (!typingTimer) void typing(true);
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { typingTimer = undefined; void typing(false); }, 2500);
});

ui.composer.addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = ui.input.value.trim();
  if (!body) return;
  ui.input.value = '';
  try {
    await send(body);
    banner(null);
  } catch (error) {
    ui.input.value = body;
    showError(error);
  }
});

ui.human.addEventListener('click', async () => {
  try {
    if (!state.conversationId) await send('I would like to talk to a person.');
    else await api.mutate(RequestHumanDocument, { conversationId: state.conversationId });
  } catch (error) {
    showError(error);
  }
});

// The lead form follows the workspace's lead fields.
function leadInput(f: LeadField): HTMLInputElement | HTMLSelectElement {
  const attrs = { name: f.key, required: f.required };
  if (f.type === 'SELECT') {
    return el('select', attrs, el('option', { value: '' }, '—'), f.options.map((o) => el('option', { value: o }, o)));
  }
  if (f.type === 'BOOLEAN') return el('input', { ...attrs, type: 'checkbox', required: false });
  const types: Partial<Record<LeadField['type'], string>> = { NUMBER: 'number', URL: 'url', EMAIL: 'email' };
  return el('input', { ...attrs, type: types[f.type] ?? 'text', step: f.type === 'NUMBER' ? 'any' : undefined });
}

ui.details.addEventListener('click', async () => {
  const form = ui.lead;
  if (!form.hidden) { form.hidden = true; return; }
  if (!state.conversationId) { banner('Ask your question first, then leave your details.'); return; }
  let leadFields: LeadField[];
  try {
    ({ leadFields } = await api.query(LeadFieldsDocument, {}));
  } catch (error) {
    showError(error);
    return;
  }
  form.replaceChildren(
    el('label', {}, 'Name', el('input', { name: 'name' })),
    el('label', {}, 'Email', el('input', { name: 'email', type: 'email' })),
    ...leadFields.map((f) => el('label', {}, f.label, leadInput(f))),
    el('p', { class: 'error', id: 'lead-error' }),
    el('button', { type: 'submit' }, 'Save'));
  form.hidden = false;
});

ui.lead.addEventListener('submit', async (event) => {
  event.preventDefault();
  const conversationId = state.conversationId;
  if (!conversationId) return;
  const data = new FormData(ui.lead);
  const fields: Record<string, string | boolean> = {};
  for (const [key, value] of data.entries()) {
    if (key !== 'name' && key !== 'email' && typeof value === 'string' && value !== '') {
      fields[key] = value === 'on' ? true : value;
    }
  }
  const text = (key: string) => {
    const value = data.get(key);
    return typeof value === 'string' && value ? value : undefined;
  };
  try {
    await api.mutate(CaptureLeadDocument, {
      conversationId,
      input: { name: text('name'), email: text('email'), fields },
    });
    ui.lead.hidden = true;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    byId('lead-error', HTMLElement).textContent =
      error instanceof ApiError && error.field ? `${error.field}: ${message}` : message;
  }
});

// Signing in to the site: its backend (here the demo server, standing in for it)
// signs the user's identity; the next conversation starts as that verified user.
function showAccount() {
  ui.account.textContent = state.identity ? `signed in as ${state.identity.name} (verified)` : 'signed out';
  ui.signin.hidden = Boolean(state.identity);
}
ui.signin.addEventListener('click', async () => {
  const response = await fetch('/demo/identity');
  const identity: unknown = response.ok ? await response.json() : undefined;
  if (!isIdentity(identity)) { banner('The site could not sign you in.'); return; }
  // A new conversation, as the signed-in user.
  Object.assign(state, { identity, visitorId: undefined, conversationId: undefined, token: undefined, lastSeq: 0 });
  save();
  location.reload();
});
showAccount();

if (!widgetKey) banner('No widget key: open this page from `casefile serve --demo`, or add ?key=wk_…');
if (state.conversationId) connect(state.conversationId);
