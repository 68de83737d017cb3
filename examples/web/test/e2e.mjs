// End-to-end in headless Chromium: a visitor asks a question the demo docs answer
// and sees the cited answer written as it streams from the model (a scripted
// OpenAI-compatible server below, which Casefile is pointed at), asks for a person; the agent in a second browser
// context, the one its team's round robin offers it to, sees the offer arrive live
// with a countdown, accepts it and replies; the visitor sees
// the reply and the agent's name; a reload of the widget shows the whole thread
// once; a visitor who says the AI's answer helped sees the chat end, resolved by
// the AI in the inbox. Along the way: the escalation queue names each handoff's
// team, shows the agent's teams with all teams one click away, and says when no one
// is waiting; "Take over" shows only on conversations the agent does not hold; the
// widget's "Talk to a person" is disabled once a person has joined. Last, a widget
// whose WebSocket is cut says so, and once it is back shows what was said meanwhile
// exactly once, its client having resubscribed after the last message shown. Any
// failed step saves a screenshot in test-results/ and exits non-zero.
// On success it refreshes the README's screenshots in docs/screenshots/.
//
// Run: npm run build, `cargo build` (the server compiles dist/ in), then
// node test/e2e.mjs   (CASEFILE_BIN picks the server binary;
// default ../../target/debug/casefile)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const root = resolve(import.meta.dirname, '../../..');
const bin = process.env.CASEFILE_BIN ?? join(root, 'target/debug/casefile');
const results = join(import.meta.dirname, '..', 'test-results');
mkdirSync(results, { recursive: true });

const freePort = () => new Promise((ok) => {
  const server = createServer().listen(0, '127.0.0.1', () => { const { port } = server.address(); server.close(() => ok(port)); });
});

// A model server as OpenAI's API streams (`data:` chunks of `choices[0].delta`, a
// finish, a usage chunk, `data: [DONE]`), writing slowly enough to be seen: it
// answers from the first source it is given and cites it as [1].
const model = createHttpServer((request, response) => {
  let body = '';
  request.on('data', (chunk) => { body += chunk; });
  request.on('end', async () => {
    if (request.method !== 'POST' || !request.url.endsWith('/v1/chat/completions')) {
      response.writeHead(404).end();
      return;
    }
    const { messages } = JSON.parse(body);
    const title = messages[0].content.match(/\n\[1\] (.+) \(/)?.[1] ?? 'the docs';
    const pieces = [`Here is what "${title}" says: `, 'open the draft, ', 'pick Schedule next to Publish ', 'and set the time [1].'];
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const chunk = (delta, extra = {}) => response.write(`data: ${JSON.stringify({
      id: 'chatcmpl-e2e', object: 'chat.completion.chunk', created: 0, model: 'fake',
      choices: [{ index: 0, delta, finish_reason: null }], ...extra })}\n\n`);
    chunk({ role: 'assistant', content: '' });
    for (const piece of pieces) {
      await new Promise((ok) => setTimeout(ok, 250));
      chunk({ content: piece });
    }
    response.write(`data: ${JSON.stringify({ id: 'chatcmpl-e2e', object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
    response.write(`data: ${JSON.stringify({ id: 'chatcmpl-e2e', object: 'chat.completion.chunk', choices: [], usage: { prompt_tokens: 300, completion_tokens: 30, total_tokens: 330 } })}\n\n`);
    response.end('data: [DONE]\n\n');
  });
});
const modelPort = await new Promise((ok) => model.listen(0, '127.0.0.1', () => ok(model.address().port)));

const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'casefile-e2e-'));
const server = spawn(bin, ['serve', '--demo', '--listen', `127.0.0.1:${port}`, '--database-url', `sqlite://${dir}/casefile.db`,
  '--llm-url', `http://127.0.0.1:${modelPort}/v1`, '--llm-model', 'fake'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const printed = await new Promise((ok, fail) => {
  let out = '';
  const timer = setTimeout(() => fail(new Error(`casefile printed no demo URLs:\n${out}`)), 30_000);
  server.stdout.on('data', (chunk) => {
    out += chunk;
    if (out.includes('agent inbox:') && out.includes('Sam Chen')) { clearTimeout(timer); ok(out); }
  });
  server.on('exit', (code) => fail(new Error(`casefile exited (${code}):\n${out}`)));
});
const widgetUrl = printed.match(/chat widget:\s+(\S+)/)[1];
const inboxUrl = printed.match(/agent inbox:\s+(\S+)/)[1];
const password = printed.match(/password of every demo account[^:]*:\s+(\S+)/)[1];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const visitorContext = await browser.newContext({ viewport: { width: 1100, height: 760 } });
const agentContext = await browser.newContext({ viewport: { width: 1400, height: 860 } });
const visitor = await visitorContext.newPage();
const agent = await agentContext.newPage();
for (const page of [visitor, agent]) page.on('pageerror', (error) => console.error(`page error: ${error.message}`));

let current = 'start';
let passed = 0;
async function step(name, action) {
  current = name;
  await action();
  passed += 1;
  console.log(`ok - ${name}`);
}

try {
  await step('the visitor asks a question the docs answer and sees the cited answer written as it streams', async () => {
    await visitor.goto(widgetUrl);
    // Every text the streaming answer shows, as it changes.
    await visitor.evaluate(() => {
      window.drafts = [];
      new MutationObserver(() => {
        const text = document.querySelector('.message.ai.streaming .text')?.textContent;
        if (text && text !== window.drafts.at(-1)) window.drafts.push(text);
      }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
    });
    await visitor.fill('#input', 'How do I schedule a draft to publish later?');
    await visitor.click('#composer button[type=submit]');
    await visitor.locator('.message.ai.streaming').waitFor({ timeout: 15_000 });
    const answer = visitor.locator('.message.ai:not(.streaming)').first();
    await answer.waitFor({ timeout: 15_000 });
    await visitor.locator('.message.ai .sources a', { hasText: 'Scheduling drafts to publish later' }).waitFor();
    if (await visitor.locator('.message.ai.streaming').count()) throw new Error('the draft stayed beside the stored answer');
    const drafts = await visitor.evaluate(() => window.drafts);
    const stored = await answer.locator('.text').textContent();
    if (drafts.length < 2) throw new Error(`the answer did not grow as it was written: ${JSON.stringify(drafts)}`);
    if (drafts.some((d, i) => i > 0 && !d.startsWith(drafts[i - 1]))) throw new Error(`the draft did not grow in order: ${JSON.stringify(drafts)}`);
    if (drafts.at(-1) !== stored) throw new Error(`the stored answer ${JSON.stringify(stored)} is not what was written ${JSON.stringify(drafts.at(-1))}`);
    if (!stored.includes('Scheduling drafts to publish later') || !stored.endsWith('[1].')) throw new Error(`unexpected answer: ${stored}`);
  });

  await step('the agent signs in to the inbox', async () => {
    await agent.goto(inboxUrl);
    await agent.fill('input[name=email]', 'alex@inkwell.example');
    await agent.fill('input[name=password]', password);
    await agent.click('#signin button');
    await agent.locator('#app').waitFor({ state: 'visible' });
    await agent.locator('.row').first().waitFor();
    // No one has asked for a person yet.
    await agent.locator('#queue-empty', { hasText: 'No one is waiting' }).waitFor({ timeout: 15_000 });
  });

  await step('the visitor asks for a person; the offer reaches the agent it went to, with a countdown', async () => {
    await visitor.click('#human');
    await visitor.locator('.message.system', { hasText: 'A person from the team will join shortly.' }).waitFor();
    // Content Support routes round robin, and Alex is its one agent online.
    const offer = agent.locator('.escalation.offer', { hasText: 'offered to you' }).first();
    await offer.waitFor({ timeout: 15_000 });
    if (!/\d:\d\d left/.test(await offer.locator('.countdown').textContent())) throw new Error('the offer shows no countdown');
    await offer.locator('.team', { hasText: 'Content Support' }).waitFor();
    await agent.locator('#queue-empty').waitFor({ state: 'hidden' });
    await offer.click();
    await agent.locator('.casefile .summary', { hasText: 'How do I schedule a draft' }).waitFor();
    await agent.locator('#decline').waitFor();
  });

  await step('the agent accepts the offer and replies', async () => {
    await agent.click('#accept');
    await agent.locator('.message.system', { hasText: 'Alex Rivera joined the conversation.' }).waitFor();
    // Alex holds the conversation now: nothing to take over, and the queue is empty again.
    await agent.locator('#take').waitFor({ state: 'hidden', timeout: 15_000 });
    await agent.locator('#queue-empty', { hasText: 'No one is waiting' }).waitFor({ timeout: 15_000 });
    await agent.fill('#reply-input', 'Hi, I am Alex. Open the draft and pick Schedule next to Publish.');
    await agent.click('#reply button[type=submit]');
    await agent.locator('.message.agent', { hasText: 'I am Alex' }).waitFor();
  });

  await step("the visitor sees the reply and the agent's name", async () => {
    await visitor.locator('.message.agent', { hasText: 'I am Alex' }).waitFor({ timeout: 15_000 });
    await visitor.locator('.message.agent .author', { hasText: 'Alex Rivera' }).waitFor();
    await visitor.locator('.message.system', { hasText: 'Alex Rivera joined the conversation.' }).waitFor();
  });

  await step('"Talk to a person" is disabled once a person has joined', async () => {
    await visitor.locator('#human:disabled').waitFor({ timeout: 15_000 });
    const title = await visitor.locator('#human').getAttribute('title');
    if (!/already here/.test(title ?? '')) throw new Error(`the disabled button says ${JSON.stringify(title)}`);
  });

  await step('a reload shows the whole thread once', async () => {
    const before = await visitor.locator('.message').count();
    const seqs = async () => visitor.locator('.message').evaluateAll((items) => items.map((i) => i.dataset.seq));
    const expected = await seqs();
    await visitor.reload();
    await visitor.locator('.message.agent', { hasText: 'I am Alex' }).waitFor({ timeout: 15_000 });
    await visitor.waitForTimeout(500);
    const after = await seqs();
    if (after.length !== before || JSON.stringify(after) !== JSON.stringify(expected)) {
      throw new Error(`thread after reload ${JSON.stringify(after)} != before ${JSON.stringify(expected)}`);
    }
    if (new Set(after).size !== after.length) throw new Error(`a message is shown twice: ${after}`);
    await visitor.locator('#human:disabled').waitFor({ timeout: 15_000 });
  });

  await step('a visitor signed in to the site chats as a verified user', async () => {
    const site = await (await browser.newContext()).newPage();
    await site.goto(widgetUrl);
    await site.click('#signin');
    await site.locator('#account', { hasText: 'signed in as Kim Lee (verified)' }).waitFor();
    await site.fill('#input', 'Where do I change my billing plan?');
    await site.click('#composer button[type=submit]');
    await site.locator('.message.visitor', { hasText: 'billing plan' }).waitFor();
    await agent.locator('.row', { hasText: 'Kim Lee' }).locator('.verified').waitFor({ timeout: 15_000 });
  });

  await step("the queue shows the agent's teams, with all teams one click away", async () => {
    // Kim's billing question goes to Accounts & Billing (an escalating topic), a team
    // Alex is not in: it waits under "All teams" only.
    const billing = agent.locator('.escalation', { hasText: 'Accounts & Billing' });
    await agent.click('#scope-all');
    await billing.locator('.team').waitFor({ timeout: 15_000 });
    await agent.click('#scope-mine');
    await billing.waitFor({ state: 'detached' });
    await agent.locator('#queue-empty', { hasText: 'No one is waiting' }).waitFor();
  });

  await step('"Take over" shows on a conversation the agent does not hold', async () => {
    await agent.locator('.row', { hasText: 'Kim Lee' }).click();
    await agent.locator('#take').waitFor({ state: 'visible', timeout: 15_000 });
    // Back to Alex's own conversation: hidden again.
    await agent.locator('.row', { has: agent.locator('.status.human') }).first().click();
    await agent.locator('#take').waitFor({ state: 'hidden', timeout: 15_000 });
  });

  await step('a visitor says the answer helped: the chat is resolved by the AI', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(widgetUrl);
    await page.fill('#input', 'How do I schedule a draft to publish later?');
    await page.click('#composer button[type=submit]');
    const ask = page.locator('.message.ai .confirm', { hasText: 'Did that answer your question?' });
    await ask.waitFor({ timeout: 15_000 });
    // A conversation the AI holds can be taken over.
    await agent.locator('.row', { has: agent.locator('.status.ai') }).first().click();
    await agent.locator('#take').waitFor({ state: 'visible', timeout: 15_000 });
    await ask.locator('button.yes').click();
    await page.locator('.message.system', { hasText: 'Glad that helped!' }).waitFor({ timeout: 15_000 });
    await agent.locator('.row .status', { hasText: 'RESOLVED by the AI' }).first().waitFor({ timeout: 15_000 });
  });

  await step('the agent sets itself away with the availability switch', async () => {
    const answered = agent.waitForResponse((r) => r.url().endsWith('/graphql') && (r.request().postData() ?? '').includes('setAvailability'));
    await agent.selectOption('#availability', 'AWAY');
    const body = await (await answered).json();
    if (body.data?.setAvailability?.availability !== 'AWAY') throw new Error(`setAvailability answered ${JSON.stringify(body)}`);
    await agent.selectOption('#availability', 'ONLINE');
  });

  await step('GraphiQL works with no network beyond 127.0.0.1 and runs a query', async () => {
    const offline = await browser.newContext();
    const outside = [];
    await offline.route('**/*', (route) => {
      const { hostname } = new URL(route.request().url());
      if (hostname === '127.0.0.1') return route.continue();
      outside.push(route.request().url());
      return route.abort();
    });
    const page = await offline.newPage();
    page.on('pageerror', (error) => console.error(`graphiql page error: ${error.message}`));
    await page.goto(new URL('/graphql', widgetUrl).href);
    const editor = page.locator('.graphiql-query-editor .CodeMirror').first();
    await editor.waitFor({ timeout: 15_000 });
    await editor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.type('{ __typename }');
    await page.locator('.graphiql-execute-button').click();
    await page.locator('.result-window', { hasText: '"__typename": "Query"' }).waitFor({ timeout: 15_000 });
    if (outside.length) throw new Error(`GraphiQL reached outside 127.0.0.1: ${outside.join(', ')}`);
    await offline.close();
  });

  await step('screenshots for the README', async () => {
    await visitor.screenshot({ path: join(root, 'docs/screenshots/widget.png') });
    await agent.locator('.row', { has: agent.locator('.status.human') }).first().click();
    await agent.waitForTimeout(300);
    await agent.screenshot({ path: join(root, 'docs/screenshots/inbox.png') });
  });

  // After the screenshots, so that the conversation it starts is not in them.
  await step('after a dropped connection the widget resumes from the last message shown: nothing lost, nothing twice', async () => {
    // The page's WebSocket goes through this route, which can cut it and refuse it.
    const context = await browser.newContext();
    let up = true;
    const open = [];
    const resumedFrom = []; // `afterSeq` of each `messages` subscription the page sent
    await context.routeWebSocket(/\/graphql$/, (socket) => {
      if (!up) { socket.close({ code: 1001 }); return; }
      const server = socket.connectToServer();
      open.push({ socket, server });
      socket.onMessage((frame) => {
        const message = JSON.parse(frame);
        if (message.type === 'subscribe' && message.payload.operationName === 'WidgetMessages') {
          resumedFrom.push(message.payload.variables.afterSeq ?? null);
        }
        server.send(frame);
      });
    });
    const page = await context.newPage();
    page.on('pageerror', (error) => console.error(`resume page error: ${error.message}`));
    const seqs = () => page.locator('.message:not(.streaming)').evaluateAll((items) => items.map((i) => Number(i.dataset.seq)));
    await page.goto(widgetUrl);
    await page.fill('#input', 'How do I schedule a draft to publish later?');
    await page.click('#composer button[type=submit]');
    await page.locator('.message.ai:not(.streaming)').waitFor({ timeout: 15_000 });
    const before = await seqs();

    up = false;
    for (const { socket, server } of open.splice(0)) {
      await server.close({ code: 1001 });
      await socket.close({ code: 1001 });
    }
    await page.locator('#banner', { hasText: "Can't reach the server. Reconnecting…" }).waitFor({ timeout: 15_000 });
    // Said while the socket is down: stored over HTTP (the mutation's answer is the
    // acknowledgement), shown only once the socket is back.
    await page.fill('#input', 'Can I change the time later?');
    const stored = page.waitForResponse((response) =>
      response.url().endsWith('/graphql') && (response.request().postData() ?? '').includes('SendMessage'));
    await page.click('#composer button[type=submit]');
    if (!(await stored).ok()) throw new Error('the message was not stored');
    if (await page.locator('.message.visitor', { hasText: 'change the time' }).count()) {
      throw new Error('a message arrived with the socket down');
    }
    up = true;

    await page.locator('.message.visitor', { hasText: 'change the time' }).waitFor({ timeout: 20_000 });
    await page.locator('.message.ai:not(.streaming)').nth(1).waitFor({ timeout: 15_000 });
    await page.locator('#banner').waitFor({ state: 'hidden', timeout: 15_000 });
    const after = await seqs();
    const expected = Array.from({ length: after.length }, (_, i) => i + 1);
    if (JSON.stringify(after) !== JSON.stringify(expected) || after.length < before.length + 2) {
      throw new Error(`thread after the reconnect ${JSON.stringify(after)}, before ${JSON.stringify(before)}`);
    }
    if (resumedFrom.length < 2 || resumedFrom[0] !== null || resumedFrom.at(-1) !== Math.max(...before)) {
      throw new Error(`messages subscribed with afterSeq ${JSON.stringify(resumedFrom)}, expected null then ${Math.max(...before)}`);
    }
    await context.close();
  });
  console.log(`browser: ${passed} passed, 0 failed`);
} catch (error) {
  console.error(`not ok - ${current}: ${error.message}`);
  const slug = current.replace(/[^a-z]+/gi, '-').slice(0, 60);
  await visitor.screenshot({ path: join(results, `failure-${slug}-visitor.png`) }).catch(() => {});
  await agent.screenshot({ path: join(results, `failure-${slug}-agent.png`) }).catch(() => {});
  console.error(`screenshots in ${results}`);
  console.log(`browser: ${passed} passed, 1 failed`);
  process.exitCode = 1;
} finally {
  await browser.close();
  server.kill('SIGTERM');
  model.close();
  model.closeAllConnections?.();
}
