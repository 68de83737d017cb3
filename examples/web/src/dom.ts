// What both pages use to build the page: typed element lookups, a tiny element
// builder, message text, and sentences.

/** The element with `id`, checked to be a `type` (the pages' HTML is fixed). */
export function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const node = document.getElementById(id);
  if (!(node instanceof type)) throw new Error(`#${id} is missing, or not a ${type.name}`);
  return node;
}

/** An attribute value; a function is an event listener (`onclick`, `onsubmit`). */
type Attribute = string | number | boolean | null | undefined | ((event: Event) => unknown);
type Child = Node | string | null | undefined | false;

/** A tiny element builder: el('p', { class: 'x' }, 'text', child). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, Attribute> = {},
  ...children: (Child | readonly Child[])[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

/** Message text with `> quote` lines as block quotes (the AI quotes the docs). */
export function rich(text: string): HTMLDivElement {
  const out = el('div', { class: 'text' });
  let quote: HTMLQuoteElement | null = null;
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

/** An AI answer's cited articles, one link a line. */
export const sourceList = (sources: readonly { title: string; url: string }[]): HTMLUListElement =>
  el('ul', { class: 'sources' },
    sources.map((s) => el('li', {}, el('a', { href: s.url, target: '_blank', rel: 'noopener' }, s.title))));

/** A count with its noun: plural(1, 'handoff') is "1 handoff", plural(2, 'handoff') "2 handoffs". */
export const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** A server message as a sentence: a capital first letter and a closing period. */
export function sentence(text: string | null | undefined): string {
  const s = String(text ?? '').trim();
  if (!s) return '';
  const capitalized = s.charAt(0).toUpperCase() + s.slice(1);
  return /[.!?…]$/.test(capitalized) ? capitalized : `${capitalized}.`;
}
