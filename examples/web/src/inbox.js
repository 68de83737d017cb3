// The agent inbox: a live list of conversations, the escalation queue with case
// files, offers made to the viewer by its team's routing (with a countdown, to
// accept or decline), accepting (and who won a race), taking over, replying,
// internal notes, tags, resolving, handing back to the AI, and the insights digest
// as a chart.
import { ApiError, el, gql, live, plural, rich, sentence, subscribe } from './api.js';

const $ = (id) => document.getElementById(id);
const session = { token: sessionStorage.getItem('casefile.token'), me: null, open: null };
let client;
const rows = new Map(); // conversation id → row data
const waiting = []; // the escalation queue: handoffs waiting, or offered to the viewer, newest first
const queueView = { scope: 'mine', teams: new Set(), loaded: false }; // scope 'mine': the viewer's teams; 'all': every team
let openSubscriptions = [];

const ROW = `id status resolvedBy updatedAt lead { name email verified } assignee { id name } team { id name }
  lastMessage { author body } tags { tag { id label } source } openHandoff { id reason status }`;
const CASE = `id reason status requestedAt team { id name } acceptedBy { name } conversation { id }
  offeredTo { id } offerExpiresAt slaDueAt slaBreachedAt
  caseFile { summary question attempts context lead { name email company fields }
    tags { source evidence tag { label } } aiAnswers { body confidence sources { title url } } }`;

const banner = (text) => { $('banner').hidden = !text; $('banner').textContent = text ?? ''; };
const call = (query, variables) => gql(query, variables, session.token);

function filter() {
  const f = {};
  if ($('f-status').value) f.status = [$('f-status').value];
  if ($('f-team').value) f.teamIds = [$('f-team').value];
  if ($('f-tag').value) f.tagIds = [$('f-tag').value];
  return f;
}

function drawList() {
  const list = [...rows.values()].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  $('conversations').replaceChildren(...list.map((c) => el('li', {
    class: `row ${c.id === session.open ? 'open' : ''}`, 'data-id': c.id, onclick: () => openConversation(c.id),
  },
  el('span', { class: `status ${c.status.toLowerCase()}` }, statusText(c)),
  el('strong', {}, c.lead?.name ?? c.lead?.email ?? 'Visitor'),
  c.lead?.verified ? el('span', { class: 'verified', title: 'Email and name verified by the site' }, 'verified') : null,
  el('span', { class: 'preview' }, c.lastMessage ? `${c.lastMessage.author.toLowerCase()}: ${c.lastMessage.body.slice(0, 80)}` : ''),
  el('span', { class: 'chips' }, c.tags.map((t) => el('span', { class: 'chip' }, t.tag.label))))));
}

async function loadList() {
  const f = filter();
  const { conversations } = await call(`query($f: ConversationFilterInput) {
    conversations(filter: $f, first: 50, orderBy: RECENTLY_UPDATED) { edges { node { ${ROW} } } } }`,
  { f: { status: f.status, teamId: f.teamIds?.[0], tagIds: f.tagIds } });
  rows.clear();
  for (const { node } of conversations.edges) rows.set(node.id, node);
  drawList();
  openSubscriptions.find((s) => s.name === 'inbox')?.stop();
  openSubscriptions = openSubscriptions.filter((s) => s.name !== 'inbox');
  openSubscriptions.push({ name: 'inbox', stop: subscribe(client, {
    query: `subscription($f: InboxFilter) { inbox(filter: $f) { kind availability agent { id }
      conversation { ${ROW} } handoff { id status offeredTo { id } } } }`,
    variables: { f },
  }, ({ inbox }) => {
    // Teammates' availability: only the viewer's own is shown here.
    if (inbox.kind === 'AGENT_AVAILABILITY_CHANGED') {
      if (inbox.agent?.id === session.me.id && inbox.availability !== 'OFFLINE') $('availability').value = inbox.availability;
      return;
    }
    if (inbox.kind === 'CONVERSATION_REMOVED') rows.delete(inbox.conversation.id);
    else rows.set(inbox.conversation.id, inbox.conversation);
    // A handoff accepted, closed, or offered to someone else leaves the viewer's queue.
    const h = inbox.handoff;
    if (h && h.status !== 'REQUESTED' && !(h.status === 'OFFERED' && h.offeredTo?.id === session.me.id)) unqueue(h.id);
    if (inbox.handoff || inbox.kind === 'CONVERSATION_OPENED') refreshInsights();
    drawList();
    if (inbox.conversation.id === session.open) drawHead(inbox.conversation);
  }, (e) => banner(e.message)) });
}

// A resolved conversation says who resolved it: the AI, an agent, the visitor, or the
// clock (a silent AI chat).
function statusText(c) {
  const by = { AI: 'by the AI', AGENT: 'by an agent', VISITOR: 'by the visitor', AUTO: 'after silence' }[c.resolvedBy];
  return c.status === 'RESOLVED' && by ? `RESOLVED ${by}` : c.status;
}

function drawHead(c) {
  $('v-status').textContent = statusText(c);
  $('v-status').className = `status ${c.status.toLowerCase()}`;
  $('v-lead').textContent = [c.lead?.name, c.lead?.email, c.assignee ? `· ${c.assignee.name}` : null].filter(Boolean).join(' ');
  $('v-tags').replaceChildren(...c.tags.map((t) => el('span', { class: 'chip' }, t.tag.label)));
  // "Take over" is for an open conversation the viewer does not hold yet.
  const held = c.status === 'HUMAN' && c.assignee?.id === session.me?.id;
  $('take').hidden = held || c.status === 'RESOLVED';
}

// An AI answer's cited articles, one link a line.
const sourceList = (sources) =>
  el('ul', { class: 'sources' }, sources.map((s) => el('li', {}, el('a', { href: s.url, target: '_blank', rel: 'noopener' }, s.title))));

function openConversation(id) {
  session.open = id;
  for (const s of openSubscriptions.filter((s) => s.name === 'open')) s.stop();
  openSubscriptions = openSubscriptions.filter((s) => s.name !== 'open');
  $('empty').hidden = true;
  $('view').hidden = false;
  $('v-messages').replaceChildren();
  const seen = new Set();
  if (rows.has(id)) drawHead(rows.get(id));
  else {
    // Not in the list (filtered out, or older than its first page): read the row.
    $('take').hidden = true;
    call(`query($id: ID!) { conversation(id: $id) { ${ROW} } }`, { id })
      .then(({ conversation }) => { if (session.open === id) drawHead(conversation); })
      .catch((e) => banner(e.message));
  }
  openSubscriptions.push({ name: 'open', stop: subscribe(client, {
    query: `subscription($c: ID!) { messages(conversationId: $c) { seq author body internal agent { name } sources { title url } } }`,
    variables: { c: id },
  }, ({ messages: m }) => {
    if (seen.has(m.seq)) return;
    seen.add(m.seq);
    const who = { VISITOR: 'Visitor', AI: 'AI', SYSTEM: '', AGENT: m.agent?.name ?? 'Agent' }[m.author];
    $('v-messages').append(el('li', { class: `message ${m.author.toLowerCase()} ${m.internal ? 'internal' : ''}` },
      who ? el('span', { class: 'author' }, m.internal ? `${who} · internal note` : who) : null,
      rich(m.body),
      m.sources?.length ? sourceList(m.sources) : null));
    $('v-messages').lastChild.scrollIntoView({ block: 'end' });
  }, (e) => banner(e.message)) });
  openSubscriptions.push({ name: 'open', stop: subscribe(client, {
    query: `subscription($c: ID!) { conversationEvents(conversationId: $c) { __typename ... on TypingEvent { author typing } } }`,
    variables: { c: id },
  }, ({ conversationEvents: e }) => {
    if (e.__typename !== 'TypingEvent' || e.author === 'AGENT') return;
    $('v-typing').hidden = !e.typing;
    $('v-typing').textContent = e.author === 'AI' ? 'The AI assistant is writing an answer…' : 'The visitor is typing…';
  }) });
  drawList();
}

function drawCaseFile(h) {
  const c = h.caseFile;
  const lead = c.lead ? [c.lead.name, c.lead.email, c.lead.company, ...Object.entries(c.lead.fields ?? {}).map(([k, v]) => `${k}: ${v}`)].filter(Boolean).join(' · ') : 'No lead details';
  $('casefile').hidden = false;
  $('casefile').replaceChildren(
    el('h3', {}, `${h.reason.replaceAll('_', ' ').toLowerCase()} · ${h.team?.name ?? 'no team'}`),
    el('p', { class: 'summary' }, c.summary),
    el('p', {}, el('strong', {}, 'Lead: '), lead),
    el('p', {}, el('strong', {}, 'Tags: '), c.tags.map((t) => el('span', { class: 'chip', title: t.evidence ?? '' }, `${t.tag.label} (${t.evidence ?? t.source})`))),
    el('p', {}, el('strong', {}, plural(c.attempts, 'AI answer')), ' before the handoff'),
    el('ul', { class: 'answers' }, c.aiAnswers.map((a) => el('li', {},
      el('span', { class: 'confidence' }, `confidence ${(a.confidence ?? 0).toFixed(2)}`),
      a.sources.length ? sourceList(a.sources) : ' · no sources cited'))),
    el('p', { class: 'error', id: 'accept-result' }),
    ...actions(h));
}

const offeredToMe = (h) => h.status === 'OFFERED' && h.offeredTo?.id === session.me?.id;

// Accept what waits in the queue or is offered to the viewer; decline an offer.
function actions(h) {
  if (offeredToMe(h)) {
    return [el('p', {}, 'Offered to you: ', countdown(h)),
      el('button', { id: 'accept', onclick: () => accept(h) }, 'Accept'), ' ',
      el('button', { id: 'decline', class: 'secondary', onclick: () => decline(h) }, 'Decline')];
  }
  if (h.status === 'REQUESTED') return [el('button', { id: 'accept', onclick: () => accept(h) }, 'Accept')];
  return [el('p', {}, `Accepted by ${h.acceptedBy?.name ?? '—'}`)];
}

// Seconds left on an offer, ticking (see the timer below).
const countdown = (h) => el('span', { class: 'countdown', 'data-expires': h.offerExpiresAt }, left(h.offerExpiresAt));
function left(at) {
  const s = Math.max(0, Math.round((Date.parse(at) - Date.now()) / 1000));
  return s > 0 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')} left` : 'passing on…';
}
setInterval(() => { for (const c of document.querySelectorAll('.countdown')) c.textContent = left(c.dataset.expires); }, 1000);

function unqueue(id) {
  const at = waiting.findIndex((w) => w.id === id);
  if (at < 0) return;
  waiting.splice(at, 1);
  drawQueue();
}

async function decline(h) {
  try {
    await call('mutation($id: ID!) { declineHandoff(handoffId: $id) { id } }', { id: h.id });
    unqueue(h.id);
    $('casefile').hidden = true;
  } catch (error) {
    $('accept-result').textContent = sentence(error.message);
  }
}

async function accept(h) {
  try {
    await call('mutation($id: ID!) { acceptHandoff(id: $id) { id } }', { id: h.id });
    unqueue(h.id);
    $('casefile').hidden = true;
    openConversation(h.conversation.id);
  } catch (error) {
    // Someone else was faster: say who.
    $('accept-result').textContent = sentence(error.message);
  }
}

// An escalation as it arrives: waiting for anyone, offered to the viewer (with its
// countdown), or past its accept target. A newer state replaces the entry; one no
// longer waiting leaves the queue.
function queue(h) {
  const at = waiting.findIndex((w) => w.id === h.id);
  if (at >= 0) waiting.splice(at, 1);
  if (h.status === 'REQUESTED' || offeredToMe(h)) waiting.unshift(h);
  drawQueue();
}

// The queue shows the viewer's teams' handoffs (and those routed to no team), or
// every team's; an offer made to the viewer shows whatever the choice.
const inScope = (h) => offeredToMe(h) || queueView.scope === 'all' || !h.team || queueView.teams.has(h.team.id);

function drawQueue() {
  const shown = waiting.filter(inScope);
  $('queue').replaceChildren(...shown.map((h) => el('li', {
    class: `escalation ${offeredToMe(h) ? 'offer' : ''}`, 'data-handoff': h.id, onclick: () => drawCaseFile(h),
  },
  el('strong', {}, h.reason.replaceAll('_', ' ').toLowerCase()), ' · ',
  el('span', { class: 'team' }, h.team?.name ?? 'no team'),
  offeredToMe(h) ? el('span', { class: 'offered' }, ' · offered to you · ', countdown(h)) : null,
  h.slaBreachedAt ? el('span', { class: 'breached' }, ' · past its accept target') : null,
  h.caseFile.question ? el('span', { class: 'question' }, h.caseFile.question) : null)));
  const others = waiting.length - shown.length;
  $('queue-empty').hidden = shown.length > 0 || !queueView.loaded;
  $('queue-empty').textContent = others
    ? `No one is waiting for your teams (${plural(others, 'handoff')} for other teams).`
    : 'No one is waiting.';
}

function setScope(scope) {
  queueView.scope = scope;
  $('scope-mine').setAttribute('aria-pressed', String(scope === 'mine'));
  $('scope-all').setAttribute('aria-pressed', String(scope === 'all'));
  drawQueue();
}

async function insights() {
  const to = new Date(Date.now() + 60_000);
  const from = new Date(to - 30 * 86_400_000);
  const { insights: d } = await call(`query($f: DateTime!, $t: DateTime!) { insights(from: $f, to: $t) {
    conversations aiResolved handoffs handoffRate topics { tag { label } conversations handoffs handoffRate } } }`,
  { f: from.toISOString(), t: to.toISOString() });
  const width = 260;
  const bars = d.topics.slice(0, 6).map((t, i) => `
    <text x="0" y="${i * 26 + 14}" font-size="11">${t.tag.label}</text>
    <rect x="120" y="${i * 26 + 3}" width="${Math.max(2, t.handoffRate * (width - 160))}" height="14" class="bar"></rect>
    <text x="${126 + t.handoffRate * (width - 160)}" y="${i * 26 + 14}" font-size="11">${Math.round(t.handoffRate * 100)}% of ${t.conversations}</text>`).join('');
  $('insights').innerHTML = `<p>${plural(d.conversations, 'conversation')} · ${d.aiResolved} resolved by the AI ·
    ${plural(d.handoffs, 'handoff')} (${Math.round(d.handoffRate * 100)}%)</p>
    <svg viewBox="0 0 ${width} ${Math.max(26, d.topics.slice(0, 6).length * 26)}" role="img" aria-label="Handoff rate by topic">${bars}</svg>`;
}

let insightsTimer;
function refreshInsights() {
  clearTimeout(insightsTimer);
  insightsTimer = setTimeout(() => insights().catch((e) => banner(e.message)), 500);
}

async function start() {
  const { viewer, teams, tags } = await call('{ viewer { id name availability teams { id name } } teams { id name } tags { id label } }');
  session.me = viewer;
  // The queue starts with the viewer's teams; an agent in none sees every team's.
  queueView.teams = new Set(viewer.teams.map((t) => t.id));
  $('scope').hidden = viewer.teams.length === 0;
  $('scope-mine').title = viewer.teams.map((t) => t.name).join(', ');
  setScope(viewer.teams.length ? 'mine' : 'all');
  $('me').textContent = viewer.name;
  if (viewer.availability !== 'OFFLINE') $('availability').value = viewer.availability;
  $('signin').hidden = true;
  $('app').hidden = false;
  for (const t of teams) $('f-team').append(el('option', { value: t.id }, t.name));
  for (const t of tags) {
    $('f-tag').append(el('option', { value: t.id }, t.label));
    $('add-tag').append(el('option', { value: t.id }, t.label));
  }
  client = live(() => session.token, (connected) => banner(connected ? null : "Can't reach the server. Reconnecting…"));
  await loadList();
  const { handoffs } = await call(`{ handoffs(filter: { status: [REQUESTED, OFFERED] }, first: 50) { edges { node { ${CASE} } } } }`);
  for (const { node } of handoffs.edges.reverse()) queue(node);
  queueView.loaded = true;
  drawQueue();
  subscribe(client, { query: `subscription { escalations { ${CASE} } }` }, ({ escalations }) => queue(escalations), (e) => banner(e.message));
  insights().catch((e) => banner(e.message));
}

const act = (query) => async () => {
  try { await call(query, { c: session.open }); } catch (error) { banner(error.message); }
};
$('scope-mine').addEventListener('click', () => setScope('mine'));
$('scope-all').addEventListener('click', () => setScope('all'));
$('take').addEventListener('click', act('mutation($c: ID!) { takeOver(conversationId: $c) { id } }'));
$('return').addEventListener('click', act('mutation($c: ID!) { returnToAi(conversationId: $c) { id } }'));
$('resolve').addEventListener('click', act('mutation($c: ID!) { resolveConversation(conversationId: $c) { id } }'));
$('add-tag').addEventListener('change', async (event) => {
  if (!event.target.value) return;
  try { await call('mutation($c: ID!, $t: ID!) { tagConversation(conversationId: $c, tagId: $t) { id } }', { c: session.open, t: event.target.value }); }
  catch (error) { banner(error.message); }
  event.target.value = '';
});
$('availability').addEventListener('change', () =>
  call('mutation($s: AvailabilityStatus!) { setAvailability(status: $s) { availability } }', { s: $('availability').value })
    .catch((e) => banner(e.message)));
for (const id of ['f-status', 'f-team', 'f-tag']) $(id).addEventListener('change', () => loadList().catch((e) => banner(e.message)));

$('reply').addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = $('reply-input').value.trim();
  if (!body || !session.open) return;
  try {
    await call('mutation($i: SendMessageInput!) { sendMessage(input: $i) { seq } }',
      { i: { conversationId: session.open, body, internal: $('internal').checked, clientMessageId: crypto.randomUUID() } });
    $('reply-input').value = '';
  } catch (error) {
    banner(error.message);
  }
});

// What went wrong signing in, as a sentence: a fetch that fails (or an answer that
// is not JSON) means the server is out of reach; a refused sign-in, wrong credentials.
function signInError(error, signingIn) {
  if (error instanceof TypeError || error instanceof SyntaxError) return "Can't reach the server.";
  if (signingIn && error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
    return /deactivated/i.test(error.message) ? 'This account is deactivated.' : 'Wrong email or password.';
  }
  return sentence(error.message);
}

$('signin').addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(event.target);
  $('signin-error').textContent = '';
  let signIn;
  try {
    ({ signIn } = await gql('mutation($e: String!, $p: String!) { signIn(email: $e, password: $p) { token } }',
      { e: data.get('email'), p: data.get('password') }));
  } catch (error) {
    $('signin-error').textContent = signInError(error, true);
    return;
  }
  session.token = signIn.token;
  sessionStorage.setItem('casefile.token', session.token);
  try {
    await start();
  } catch (error) {
    $('signin-error').textContent = signInError(error, false);
  }
});

if (session.token) start().catch(() => { sessionStorage.removeItem('casefile.token'); session.token = null; });
