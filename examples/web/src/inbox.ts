// The agent inbox: a live list of conversations, the escalation queue with case
// files, offers made to the viewer by its team's routing (with a countdown, to
// accept or decline), accepting (and who won a race), taking over, replying,
// internal notes, tags, resolving, handing back to the AI, and the insights digest
// as a chart.
import type { TypedDocumentNode } from '@urql/core';
import { ApiError, createApi, isRecord, Unreachable } from './client';
import { byId, el, plural, rich, sentence, sourceList } from './dom';
import {
  AcceptHandoffDocument,
  ConversationsDocument,
  DeclineHandoffDocument,
  EscalationsDocument,
  InboxConversationDocument,
  InboxDocument,
  InboxStartDocument,
  InsightsDocument,
  ResolveConversationDocument,
  ReturnToAiDocument,
  SendReplyDocument,
  SetAvailabilityDocument,
  SignInDocument,
  TagConversationDocument,
  TakeOverDocument,
  ThreadMessagesDocument,
  ThreadTypingDocument,
  WaitingHandoffsDocument,
  type Author,
  type AvailabilityStatus,
  type ConversationStatus,
  type EscalationFragment,
  type InboxFilter,
  type InboxRowFragment,
  type InboxStartQuery,
  type ResolvedBy,
} from './gql/graphql';

type Row = InboxRowFragment;
type Escalation = EscalationFragment;

const ui = {
  signin: byId('signin', HTMLFormElement),
  signinError: byId('signin-error', HTMLElement),
  app: byId('app', HTMLElement),
  me: byId('me', HTMLElement),
  availability: byId('availability', HTMLSelectElement),
  banner: byId('banner', HTMLElement),
  status: byId('f-status', HTMLSelectElement),
  team: byId('f-team', HTMLSelectElement),
  tag: byId('f-tag', HTMLSelectElement),
  conversations: byId('conversations', HTMLOListElement),
  empty: byId('empty', HTMLElement),
  view: byId('view', HTMLElement),
  viewStatus: byId('v-status', HTMLElement),
  viewLead: byId('v-lead', HTMLElement),
  viewTags: byId('v-tags', HTMLElement),
  viewMessages: byId('v-messages', HTMLOListElement),
  viewTyping: byId('v-typing', HTMLElement),
  take: byId('take', HTMLButtonElement),
  returnToAi: byId('return', HTMLButtonElement),
  resolve: byId('resolve', HTMLButtonElement),
  addTag: byId('add-tag', HTMLSelectElement),
  reply: byId('reply', HTMLFormElement),
  replyInput: byId('reply-input', HTMLTextAreaElement),
  internal: byId('internal', HTMLInputElement),
  scope: byId('scope', HTMLElement),
  scopeMine: byId('scope-mine', HTMLButtonElement),
  scopeAll: byId('scope-all', HTMLButtonElement),
  queueEmpty: byId('queue-empty', HTMLElement),
  queue: byId('queue', HTMLOListElement),
  caseFile: byId('casefile', HTMLElement),
  insights: byId('insights', HTMLElement),
};

const session: { token: string | null; me: InboxStartQuery['viewer'] | null; open: string | null } = {
  token: sessionStorage.getItem('casefile.token'),
  me: null,
  open: null,
};
const rows = new Map<string, Row>(); // conversation id → row data
const waiting: Escalation[] = []; // the escalation queue: handoffs waiting, or offered to the viewer, newest first
// scope 'mine': the viewer's teams; 'all': every team
const queueView: { scope: 'mine' | 'all'; teams: Set<string>; loaded: boolean } = {
  scope: 'mine', teams: new Set(), loaded: false,
};
let openSubscriptions: { name: 'inbox' | 'open'; stop: () => void }[] = [];

const banner = (text: string | null) => { ui.banner.hidden = !text; ui.banner.textContent = text ?? ''; };
const say = (error: unknown) => banner(error instanceof Error ? error.message : String(error));
const api = createApi({
  token: () => session.token,
  onStatus: (connected) => banner(connected ? null : "Can't reach the server. Reconnecting…"),
});

const statuses: readonly string[] = ['AI', 'QUEUED', 'HUMAN', 'RESOLVED'] satisfies ConversationStatus[];
const isStatus = (value: string): value is ConversationStatus => statuses.includes(value);

function filter(): InboxFilter {
  const f: InboxFilter = {};
  if (isStatus(ui.status.value)) f.status = [ui.status.value];
  if (ui.team.value) f.teamIds = [ui.team.value];
  if (ui.tag.value) f.tagIds = [ui.tag.value];
  return f;
}

function drawList() {
  const list = [...rows.values()].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
  ui.conversations.replaceChildren(...list.map((c) => el('li', {
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
  const { conversations } = await api.query(ConversationsDocument,
    { filter: { status: f.status, teamId: f.teamIds?.[0], tagIds: f.tagIds } });
  rows.clear();
  for (const { node } of conversations.edges) rows.set(node.id, node);
  drawList();
  openSubscriptions.find((s) => s.name === 'inbox')?.stop();
  openSubscriptions = openSubscriptions.filter((s) => s.name !== 'inbox');
  openSubscriptions.push({ name: 'inbox', stop: api.subscribe(InboxDocument, { filter: f }, ({ inbox }) => {
    // Teammates' availability: only the viewer's own is shown here.
    if (inbox.kind === 'AGENT_AVAILABILITY_CHANGED') {
      if (inbox.agent?.id === session.me?.id && inbox.availability && inbox.availability !== 'OFFLINE') {
        ui.availability.value = inbox.availability;
      }
      return;
    }
    const conversation = inbox.conversation;
    if (!conversation) return; // every kind but availability carries one
    if (inbox.kind === 'CONVERSATION_REMOVED') rows.delete(conversation.id);
    else rows.set(conversation.id, conversation);
    // A handoff accepted, closed, or offered to someone else leaves the viewer's queue.
    const h = inbox.handoff;
    if (h && h.status !== 'REQUESTED' && !(h.status === 'OFFERED' && h.offeredTo?.id === session.me?.id)) unqueue(h.id);
    if (inbox.handoff || inbox.kind === 'CONVERSATION_OPENED') refreshInsights();
    drawList();
    if (conversation.id === session.open) drawHead(conversation);
  }, say) });
}

// A resolved conversation says who resolved it: the AI, an agent, the visitor, or the
// clock (a silent AI chat).
const resolvedBy: Record<ResolvedBy, string> = {
  AI: 'by the AI', AGENT: 'by an agent', VISITOR: 'by the visitor', AUTO: 'after silence',
};
function statusText(c: Row): string {
  const by = c.resolvedBy ? resolvedBy[c.resolvedBy] : undefined;
  return c.status === 'RESOLVED' && by ? `RESOLVED ${by}` : c.status;
}

function drawHead(c: Row) {
  ui.viewStatus.textContent = statusText(c);
  ui.viewStatus.className = `status ${c.status.toLowerCase()}`;
  ui.viewLead.textContent = [c.lead?.name, c.lead?.email, c.assignee ? `· ${c.assignee.name}` : null].filter(Boolean).join(' ');
  ui.viewTags.replaceChildren(...c.tags.map((t) => el('span', { class: 'chip' }, t.tag.label)));
  // "Take over" is for an open conversation the viewer does not hold yet.
  const held = c.status === 'HUMAN' && c.assignee?.id === session.me?.id;
  ui.take.hidden = held || c.status === 'RESOLVED';
}

// Subscribes once per opened conversation: the client's subscription layer resumes
// the thread after a dropped connection (messages after the last `seq` shown).
function openConversation(id: string) {
  session.open = id;
  for (const s of openSubscriptions.filter((s) => s.name === 'open')) s.stop();
  openSubscriptions = openSubscriptions.filter((s) => s.name !== 'open');
  ui.empty.hidden = true;
  ui.view.hidden = false;
  ui.viewMessages.replaceChildren();
  const seen = new Set<number>();
  const row = rows.get(id);
  if (row) drawHead(row);
  else {
    // Not in the list (filtered out, or older than its first page): read the row.
    ui.take.hidden = true;
    api.query(InboxConversationDocument, { id })
      .then(({ conversation }) => { if (session.open === id) drawHead(conversation); })
      .catch(say);
  }
  openSubscriptions.push({ name: 'open', stop: api.subscribe(ThreadMessagesDocument, { conversationId: id }, ({ messages: m }) => {
    if (seen.has(m.seq)) return;
    seen.add(m.seq);
    const authors: Record<Author, string> = { VISITOR: 'Visitor', AI: 'AI', SYSTEM: '', AGENT: m.agent?.name ?? 'Agent' };
    const who = authors[m.author];
    const item = el('li', { class: `message ${m.author.toLowerCase()} ${m.internal ? 'internal' : ''}` },
      who ? el('span', { class: 'author' }, m.internal ? `${who} · internal note` : who) : null,
      rich(m.body),
      m.sources.length ? sourceList(m.sources) : null);
    ui.viewMessages.append(item);
    item.scrollIntoView({ block: 'end' });
  }, say) });
  openSubscriptions.push({ name: 'open', stop: api.subscribe(ThreadTypingDocument, { conversationId: id }, ({ conversationEvents: e }) => {
    if (e.__typename !== 'TypingEvent' || e.author === 'AGENT') return;
    ui.viewTyping.hidden = !e.typing;
    ui.viewTyping.textContent = e.author === 'AI' ? 'The AI assistant is writing an answer…' : 'The visitor is typing…';
  }) });
  drawList();
}

function drawCaseFile(h: Escalation) {
  const c = h.caseFile;
  const fields = c.lead && isRecord(c.lead.fields) ? Object.entries(c.lead.fields).map(([k, v]) => `${k}: ${String(v)}`) : [];
  const lead = c.lead ? [c.lead.name, c.lead.email, c.lead.company, ...fields].filter(Boolean).join(' · ') : 'No lead details';
  const result = el('p', { class: 'error', id: 'accept-result' });
  ui.caseFile.hidden = false;
  ui.caseFile.replaceChildren(
    el('h3', {}, `${h.reason.replaceAll('_', ' ').toLowerCase()} · ${h.team?.name ?? 'no team'}`),
    el('p', { class: 'summary' }, c.summary),
    el('p', {}, el('strong', {}, 'Lead: '), lead),
    el('p', {}, el('strong', {}, 'Tags: '), c.tags.map((t) => el('span', { class: 'chip', title: t.evidence ?? '' }, `${t.tag.label} (${t.evidence ?? t.source})`))),
    el('p', {}, el('strong', {}, plural(c.attempts, 'AI answer')), ' before the handoff'),
    el('ul', { class: 'answers' }, c.aiAnswers.map((a) => el('li', {},
      el('span', { class: 'confidence' }, `confidence ${(a.confidence ?? 0).toFixed(2)}`),
      a.sources.length ? sourceList(a.sources) : ' · no sources cited'))),
    result,
    ...actions(h, result));
}

const offeredToMe = (h: Escalation) => h.status === 'OFFERED' && h.offeredTo?.id === session.me?.id;

// Accept what waits in the queue or is offered to the viewer; decline an offer.
function actions(h: Escalation, result: HTMLElement): (Node | string)[] {
  if (offeredToMe(h)) {
    return [el('p', {}, 'Offered to you: ', countdown(h)),
      el('button', { id: 'accept', onclick: () => accept(h, result) }, 'Accept'), ' ',
      el('button', { id: 'decline', class: 'secondary', onclick: () => decline(h, result) }, 'Decline')];
  }
  if (h.status === 'REQUESTED') return [el('button', { id: 'accept', onclick: () => accept(h, result) }, 'Accept')];
  return [el('p', {}, `Accepted by ${h.acceptedBy?.name ?? '—'}`)];
}

// Seconds left on an offer, ticking (see the timer below).
const countdown = (h: Escalation) => el('span', { class: 'countdown', 'data-expires': h.offerExpiresAt }, left(h.offerExpiresAt));
function left(at: string | null | undefined): string {
  const s = at ? Math.max(0, Math.round((Date.parse(at) - Date.now()) / 1000)) : 0;
  return s > 0 ? `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')} left` : 'passing on…';
}
setInterval(() => {
  for (const c of document.querySelectorAll<HTMLElement>('.countdown')) c.textContent = left(c.dataset.expires);
}, 1000);

function unqueue(id: string) {
  const at = waiting.findIndex((w) => w.id === id);
  if (at < 0) return;
  waiting.splice(at, 1);
  drawQueue();
}

async function decline(h: Escalation, result: HTMLElement) {
  try {
    await api.mutate(DeclineHandoffDocument, { handoffId: h.id });
    unqueue(h.id);
    ui.caseFile.hidden = true;
  } catch (error) {
    result.textContent = sentence(error instanceof Error ? error.message : String(error));
  }
}

async function accept(h: Escalation, result: HTMLElement) {
  try {
    await api.mutate(AcceptHandoffDocument, { id: h.id });
    unqueue(h.id);
    ui.caseFile.hidden = true;
    openConversation(h.conversation.id);
  } catch (error) {
    // Someone else was faster: say who.
    result.textContent = sentence(error instanceof Error ? error.message : String(error));
  }
}

// An escalation as it arrives: waiting for anyone, offered to the viewer (with its
// countdown), or past its accept target. A newer state replaces the entry; one no
// longer waiting leaves the queue.
function queue(h: Escalation) {
  const at = waiting.findIndex((w) => w.id === h.id);
  if (at >= 0) waiting.splice(at, 1);
  if (h.status === 'REQUESTED' || offeredToMe(h)) waiting.unshift(h);
  drawQueue();
}

// The queue shows the viewer's teams' handoffs (and those routed to no team), or
// every team's; an offer made to the viewer shows whatever the choice.
const inScope = (h: Escalation) => offeredToMe(h) || queueView.scope === 'all' || !h.team || queueView.teams.has(h.team.id);

function drawQueue() {
  const shown = waiting.filter(inScope);
  ui.queue.replaceChildren(...shown.map((h) => el('li', {
    class: `escalation ${offeredToMe(h) ? 'offer' : ''}`, 'data-handoff': h.id, onclick: () => drawCaseFile(h),
  },
  el('strong', {}, h.reason.replaceAll('_', ' ').toLowerCase()), ' · ',
  el('span', { class: 'team' }, h.team?.name ?? 'no team'),
  offeredToMe(h) ? el('span', { class: 'offered' }, ' · offered to you · ', countdown(h)) : null,
  h.slaBreachedAt ? el('span', { class: 'breached' }, ' · past its accept target') : null,
  h.caseFile.question ? el('span', { class: 'question' }, h.caseFile.question) : null)));
  const others = waiting.length - shown.length;
  ui.queueEmpty.hidden = shown.length > 0 || !queueView.loaded;
  ui.queueEmpty.textContent = others
    ? `No one is waiting for your teams (${plural(others, 'handoff')} for other teams).`
    : 'No one is waiting.';
}

function setScope(scope: 'mine' | 'all') {
  queueView.scope = scope;
  ui.scopeMine.setAttribute('aria-pressed', String(scope === 'mine'));
  ui.scopeAll.setAttribute('aria-pressed', String(scope === 'all'));
  drawQueue();
}

/** Text for HTML: the chart is written as markup. */
const escape = (text: string) => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

async function insights() {
  const to = new Date(Date.now() + 60_000);
  const from = new Date(to.getTime() - 30 * 86_400_000);
  const { insights: d } = await api.query(InsightsDocument, { from: from.toISOString(), to: to.toISOString() });
  const width = 260;
  const bars = d.topics.slice(0, 6).map((t, i) => `
    <text x="0" y="${i * 26 + 14}" font-size="11">${escape(t.tag.label)}</text>
    <rect x="120" y="${i * 26 + 3}" width="${Math.max(2, t.handoffRate * (width - 160))}" height="14" class="bar"></rect>
    <text x="${126 + t.handoffRate * (width - 160)}" y="${i * 26 + 14}" font-size="11">${Math.round(t.handoffRate * 100)}% of ${t.conversations}</text>`).join('');
  ui.insights.innerHTML = `<p>${plural(d.conversations, 'conversation')} · ${d.aiResolved} resolved by the AI ·
    ${plural(d.handoffs, 'handoff')} (${Math.round(d.handoffRate * 100)}%)</p>
    <svg viewBox="0 0 ${width} ${Math.max(26, d.topics.slice(0, 6).length * 26)}" role="img" aria-label="Handoff rate by topic">${bars}</svg>`;
}

let insightsTimer: ReturnType<typeof setTimeout> | undefined;
function refreshInsights() {
  clearTimeout(insightsTimer);
  insightsTimer = setTimeout(() => insights().catch(say), 500);
}

async function start() {
  const { viewer, teams, tags } = await api.query(InboxStartDocument, {});
  session.me = viewer;
  // The queue starts with the viewer's teams; an agent in none sees every team's.
  queueView.teams = new Set(viewer.teams.map((t) => t.id));
  ui.scope.hidden = viewer.teams.length === 0;
  ui.scopeMine.title = viewer.teams.map((t) => t.name).join(', ');
  setScope(viewer.teams.length ? 'mine' : 'all');
  ui.me.textContent = viewer.name;
  if (viewer.availability !== 'OFFLINE') ui.availability.value = viewer.availability;
  ui.signin.hidden = true;
  ui.app.hidden = false;
  for (const t of teams) ui.team.append(el('option', { value: t.id }, t.name));
  for (const t of tags) {
    ui.tag.append(el('option', { value: t.id }, t.label));
    ui.addTag.append(el('option', { value: t.id }, t.label));
  }
  await loadList();
  const { handoffs } = await api.query(WaitingHandoffsDocument, {});
  for (const { node } of [...handoffs.edges].reverse()) queue(node);
  queueView.loaded = true;
  drawQueue();
  api.subscribe(EscalationsDocument, {}, ({ escalations }) => queue(escalations), say);
  insights().catch(say);
}

// The buttons over the open conversation.
const act = (document: TypedDocumentNode<unknown, { conversationId: string }>) => async () => {
  if (!session.open) return;
  try { await api.mutate(document, { conversationId: session.open }); } catch (error) { say(error); }
};
ui.scopeMine.addEventListener('click', () => setScope('mine'));
ui.scopeAll.addEventListener('click', () => setScope('all'));
ui.take.addEventListener('click', act(TakeOverDocument));
ui.returnToAi.addEventListener('click', act(ReturnToAiDocument));
ui.resolve.addEventListener('click', act(ResolveConversationDocument));
ui.addTag.addEventListener('change', async () => {
  const tagId = ui.addTag.value;
  if (!tagId || !session.open) return;
  try { await api.mutate(TagConversationDocument, { conversationId: session.open, tagId }); } catch (error) { say(error); }
  ui.addTag.value = '';
});
const isAvailability = (value: string): value is AvailabilityStatus => value === 'ONLINE' || value === 'AWAY';
ui.availability.addEventListener('change', () => {
  const status = ui.availability.value;
  if (isAvailability(status)) api.mutate(SetAvailabilityDocument, { status }).catch(say);
});
for (const select of [ui.status, ui.team, ui.tag]) select.addEventListener('change', () => loadList().catch(say));

ui.reply.addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = ui.replyInput.value.trim();
  if (!body || !session.open) return;
  try {
    await api.mutate(SendReplyDocument,
      { input: { conversationId: session.open, body, internal: ui.internal.checked, clientMessageId: crypto.randomUUID() } });
    ui.replyInput.value = '';
  } catch (error) {
    say(error);
  }
});

// What went wrong signing in, as a sentence: a request that fails (or an answer that
// is not GraphQL) means the server is out of reach; a refused sign-in, wrong credentials.
function signInError(error: unknown, signingIn: boolean): string {
  if (error instanceof Unreachable) return "Can't reach the server.";
  if (signingIn && error instanceof ApiError && error.code === 'UNAUTHENTICATED') {
    return /deactivated/i.test(error.message) ? 'This account is deactivated.' : 'Wrong email or password.';
  }
  return sentence(error instanceof Error ? error.message : String(error));
}

ui.signin.addEventListener('submit', async (event) => {
  event.preventDefault();
  const data = new FormData(ui.signin);
  const text = (key: string) => { const value = data.get(key); return typeof value === 'string' ? value : ''; };
  ui.signinError.textContent = '';
  let token: string;
  try {
    ({ signIn: { token } } = await api.mutate(SignInDocument, { email: text('email'), password: text('password') }));
  } catch (error) {
    ui.signinError.textContent = signInError(error, true);
    return;
  }
  session.token = token;
  sessionStorage.setItem('casefile.token', token);
  try {
    await start();
  } catch (error) {
    ui.signinError.textContent = signInError(error, false);
  }
});

if (session.token) start().catch(() => { sessionStorage.removeItem('casefile.token'); session.token = null; });
