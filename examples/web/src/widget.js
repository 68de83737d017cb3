// The chat widget: start a conversation with the widget key, see the AI's cited
// answers (a model's as it writes them), ask for a person, leave lead details, and resume after a reload with no
// lost or doubled message.
import { ApiError, el, gql, live, rich, subscribe, uuid } from './api.js';

const widgetKey =
  document.querySelector('meta[name="casefile-widget-key"]')?.content ??
  new URLSearchParams(location.search).get('key');
const storeKey = `casefile.widget.${widgetKey}`;
const saved = JSON.parse(localStorage.getItem(storeKey) ?? '{}');
// The visitor id comes from the server, and only counts with a token that proves it.
const state = { visitorId: saved.visitorId, conversationId: saved.conversationId, token: saved.token,
  identity: saved.identity, lastSeq: 0 };
const save = () =>
  localStorage.setItem(storeKey, JSON.stringify({ visitorId: state.visitorId, conversationId: state.conversationId,
    token: state.token, identity: state.identity }));
save();

const $ = (id) => document.getElementById(id);
const shown = new Map(); // seq → element: a message is never shown twice
let client;

function banner(text) {
  $('banner').hidden = !text;
  $('banner').textContent = text ?? '';
}

// Whether a person from the team has the chat: then "Talk to a person" would only ask
// again. Known from the conversation's status (read when connecting, then its status
// changes) and from the messages that say so (an agent joined or wrote, the AI
// answered, the chat went back to the AI). The newest signal wins, by `seq`; on a tie
// the status does, as it also knows what no message says (an agent resolving).
const control = { seq: -1, fromStatus: false };
function personHere(here, seq, fromStatus) {
  if (seq < control.seq || (seq === control.seq && control.fromStatus && !fromStatus)) return;
  Object.assign(control, { seq, fromStatus });
  $('human').disabled = here;
  $('human').title = here ? 'A person from the team is already here.' : '';
}

const joined = (message) => message.author === 'AGENT' ||
  (message.author === 'SYSTEM' && / joined the conversation\.$/.test(message.body));
const backToAi = (message) => message.author === 'AI' ||
  (message.author === 'SYSTEM' && message.body.includes('chatting with the AI assistant again'));

// A model's answer as it is written: `AnswerDelta` pieces, by the visitor message
// they answer. A piece that starts past what is shown means one was missed: the
// draft stops growing and waits for the stored answer, which replaces it.
const drafts = new Map(); // replyToSeq → { item, text, chars, broken }
function draft({ replyToSeq, offset, text }) {
  let d = drafts.get(replyToSeq);
  if (!d) {
    if (offset !== 0 || [...shown.values()].some((m) => m.dataset.replyToSeq === String(replyToSeq))) return;
    const body = el('div', { class: 'text' });
    const item = el('li', { class: 'message ai streaming', 'data-reply-to-seq': replyToSeq },
      el('span', { class: 'author' }, 'AI assistant'), body);
    d = { item, body, text: '', chars: 0, broken: false };
    drafts.set(replyToSeq, d);
    $('messages').append(item);
  }
  if (d.broken) return;
  const pieces = [...text];
  if (offset > d.chars) { d.broken = true; return; }
  const fresh = pieces.slice(d.chars - offset).join(''); // a piece seen twice adds nothing
  d.text += fresh;
  d.chars += pieces.length - Math.min(pieces.length, d.chars - offset);
  d.body.textContent = d.text;
  $('typing').hidden = true;
  d.item.scrollIntoView({ block: 'end' });
}
// A stored answer replaces its draft; a person taking the chat ends every draft
// (the model's request was abandoned).
function endDrafts(upTo = Infinity) {
  for (const [seq, d] of drafts) {
    if (seq <= upTo) { d.item.remove(); drafts.delete(seq); }
  }
}

function render(message) {
  if (message.author === 'AI' && message.replyToSeq != null) endDrafts(message.replyToSeq);
  if (message.author === 'AGENT') endDrafts();
  if (shown.has(message.seq)) return;
  if (joined(message)) personHere(true, message.seq, false);
  else if (backToAi(message)) personHere(false, message.seq, false);
  const author = message.author.toLowerCase();
  const label = { visitor: 'You', ai: 'AI assistant', system: '', agent: message.agent?.name ?? 'Agent' }[author];
  const item = el('li', { class: `message ${author}`, 'data-seq': message.seq, 'data-reply-to-seq': message.replyToSeq },
    label ? el('span', { class: 'author' }, label) : null,
    rich(message.body),
    message.sources?.length
      ? el('ul', { class: 'sources' }, message.sources.map((s) => el('li', {}, el('a', { href: s.url, target: '_blank', rel: 'noopener' }, s.title))))
      : null);
  if (message.author === 'AGENT') $('who').textContent = `${message.agent?.name ?? 'An agent'} from Inkwell`;
  if (message.author === 'AI' && message.id) askIfItHelped(item, message);
  // Only the AI's latest answer asks; anything said after it ends the question.
  if (message.seq === Math.max(message.seq, state.lastSeq)) {
    for (const old of document.querySelectorAll('.confirm')) if (!item.contains(old)) old.remove();
  }
  const later = [...shown.keys()].filter((seq) => seq > message.seq).sort((a, b) => a - b)[0];
  $('messages').insertBefore(item, later === undefined ? null : shown.get(later));
  shown.set(message.seq, item);
  state.lastSeq = Math.max(state.lastSeq, message.seq);
  item.scrollIntoView({ block: 'end' });
}

// "Did that answer your question?" under the AI's latest answer: yes resolves the
// chat as answered by the AI; no tells the AI, which hands the chat to a person
// when the workspace's policy says so.
function askIfItHelped(item, message) {
  const answer = (helpful) => async () => {
    try {
      await gql(`mutation($c: ID!, $m: ID!, $h: Boolean!) { confirmAnswer(conversationId: $c, messageId: $m, helpful: $h) { status } }`,
        { c: state.conversationId, m: message.id, h: helpful }, state.token);
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

function connect() {
  client = live(() => state.token, (connected) => banner(connected ? null : "Can't reach the server. Reconnecting…"));
  // The variables are read at every (re)subscription: after a drop, only what came
  // after the last message shown is replayed.
  subscribe(client, {
    query: `subscription($c: ID!, $after: Int) { messages(conversationId: $c, afterSeq: $after) {
      id seq author body replyToSeq agent { name } sources { title url } } }`,
    get variables() { return { c: state.conversationId, after: state.lastSeq }; },
  }, (data) => render(data.messages), showError);
  subscribe(client, {
    query: `subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename
      ... on TypingEvent { author typing agent { name } }
      ... on AnswerDelta { replyToSeq offset text }
      ... on ConversationStatusChanged { status conversation { lastSeq } } } }`,
    variables: { c: state.conversationId },
  }, ({ conversationEvents: event }) => {
    if (event.__typename === 'AnswerDelta') { draft(event); return; }
    if (event.__typename === 'ConversationStatusChanged') {
      if (event.status === 'HUMAN') endDrafts();
      personHere(event.status === 'HUMAN', event.conversation.lastSeq, true);
      return;
    }
    if (event.__typename !== 'TypingEvent' || event.author === 'VISITOR') return;
    $('typing').hidden = !event.typing;
    const who = event.author === 'AI' ? 'AI assistant' : (event.agent?.name ?? 'Someone');
    $('typing').textContent = `${who} is typing…`;
  }, showError);
  // Who has the chat now (a reload after an agent resolved it shows no message saying so).
  const id = state.conversationId;
  gql('query($c: ID!) { conversation(id: $c) { status lastSeq } }', { c: id }, state.token)
    .then(({ conversation: c }) => { if (state.conversationId === id) personHere(c.status === 'HUMAN', c.lastSeq, true); })
    .catch(() => {});
}

function showError(error) {
  if (error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
    // The visitor token expired: start over.
    localStorage.removeItem(storeKey);
    banner('This chat has expired. Reload the page to start a new one.');
  } else if (error instanceof TypeError) {
    banner("Can't reach the server. Check your connection and try again.");
  } else {
    banner(error.message);
  }
}

async function send(body) {
  if (!state.conversationId) {
    const cms = document.body.dataset;
    const data = await gql(`mutation($input: StartConversationInput!) {
      startConversation(input: $input) { visitorId visitorToken conversation { id } } }`, {
      input: { widgetKey, visitorId: state.visitorId, message: body, identityToken: state.identity?.identityToken,
        context: { pageUrl: location.href, cms: cms.cms, cmsVersion: cms.cmsVersion, title: document.title } },
    }, state.identity ? undefined : state.token);
    state.visitorId = data.startConversation.visitorId;
    state.conversationId = data.startConversation.conversation.id;
    state.token = data.startConversation.visitorToken;
    save();
    connect();
    return;
  }
  await gql(`mutation($input: SendMessageInput!) { sendMessage(input: $input) { seq } }`,
    { input: { conversationId: state.conversationId, body, clientMessageId: uuid() } }, state.token);
}

let typingTimer;
$('input').addEventListener('input', () => {
  if (!state.conversationId) return;
  const typing = (value) => gql(`mutation($c: ID!, $t: Boolean!) { setTyping(conversationId: $c, typing: $t) }`,
    { c: state.conversationId, t: value }, state.token).catch(() => {});
  if (!typingTimer) typing(true);
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => { typingTimer = undefined; typing(false); }, 2500);
});

$('composer').addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = $('input').value.trim();
  if (!body) return;
  $('input').value = '';
  try {
    await send(body);
    banner(null);
  } catch (error) {
    $('input').value = body;
    showError(error);
  }
});

$('human').addEventListener('click', async () => {
  try {
    if (!state.conversationId) await send('I would like to talk to a person.');
    else await gql(`mutation($c: ID!) { requestHuman(conversationId: $c) { id } }`, { c: state.conversationId }, state.token);
  } catch (error) {
    showError(error);
  }
});

// The lead form follows the workspace's lead fields.
$('details').addEventListener('click', async () => {
  const form = $('lead');
  if (!form.hidden) { form.hidden = true; return; }
  if (!state.conversationId) { banner('Ask your question first, then leave your details.'); return; }
  const { leadFields } = await gql('{ leadFields { key label type options required } }', {}, state.token);
  const input = (f) => {
    const attrs = { name: f.key, required: f.required };
    if (f.type === 'SELECT') return el('select', attrs, el('option', { value: '' }, '—'), f.options.map((o) => el('option', { value: o }, o)));
    if (f.type === 'BOOLEAN') return el('input', { ...attrs, type: 'checkbox', required: false });
    const type = { NUMBER: 'number', URL: 'url', EMAIL: 'email' }[f.type] ?? 'text';
    return el('input', { ...attrs, type, step: f.type === 'NUMBER' ? 'any' : undefined });
  };
  form.replaceChildren(
    el('label', {}, 'Name', el('input', { name: 'name' })),
    el('label', {}, 'Email', el('input', { name: 'email', type: 'email' })),
    leadFields.map((f) => el('label', {}, f.label, input(f))),
    el('p', { class: 'error', id: 'lead-error' }),
    el('button', { type: 'submit' }, 'Save'));
  form.hidden = false;
});

$('lead').addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(event.target);
  const fields = {};
  for (const [key, value] of data.entries()) {
    if (key !== 'name' && key !== 'email' && value !== '') fields[key] = value === 'on' ? true : value;
  }
  try {
    await gql(`mutation($c: ID!, $i: LeadInput!) { captureLead(conversationId: $c, input: $i) { id } }`, {
      c: state.conversationId,
      i: { name: data.get('name') || undefined, email: data.get('email') || undefined, fields },
    }, state.token);
    event.target.hidden = true;
  } catch (error) {
    $('lead-error').textContent = error.field ? `${error.field}: ${error.message}` : error.message;
  }
});

// Signing in to the site: its backend (here the demo server, standing in for it)
// signs the user's identity; the next conversation starts as that verified user.
function showAccount() {
  $('account').textContent = state.identity ? `signed in as ${state.identity.name} (verified)` : 'signed out';
  $('signin').hidden = Boolean(state.identity);
}
$('signin').addEventListener('click', async () => {
  const response = await fetch('/demo/identity');
  if (!response.ok) { banner('The site could not sign you in.'); return; }
  state.identity = await response.json();
  // A new conversation, as the signed-in user.
  Object.assign(state, { visitorId: undefined, conversationId: undefined, token: undefined, lastSeq: 0 });
  save();
  location.reload();
});
showAccount();

if (!widgetKey) banner('No widget key: open this page from `casefile serve --demo`, or add ?key=wk_…');
if (state.conversationId) connect();
