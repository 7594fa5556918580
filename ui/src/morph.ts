// Patches a live DOM tree to match new HTML instead of replacing it, so elements keep
// their identity across redraws: focus, caret, a dragged slider, scroll positions and
// typed text survive the level and link events that arrive several times a second.

function sameNode(a: Node, b: Node): boolean {
  if (a.nodeType !== b.nodeType || a.nodeName !== b.nodeName) return false;
  if (a instanceof Element && b instanceof Element) {
    // Keyed elements (people, rows) are only patched into the same key.
    for (const k of ["id", "data-key", "data-history-room", "data-screen", "data-form", "type", "name"]) {
      if (a.getAttribute(k) !== b.getAttribute(k)) return false;
    }
  }
  return true;
}

function syncAttributes(a: Element, b: Element): void {
  for (const { name } of [...a.attributes]) if (!b.hasAttribute(name)) a.removeAttribute(name);
  for (const { name, value } of [...b.attributes]) if (a.getAttribute(name) !== value) a.setAttribute(name, value);
}

/** Form state the view owns (checked boxes, chosen options, a slider not being dragged). */
function syncProperties(a: Element, b: Element): void {
  if (a instanceof HTMLInputElement && b instanceof HTMLInputElement) {
    if (a.type === "checkbox" || a.type === "radio") a.checked = b.hasAttribute("checked");
    else if (a.type === "range" && document.activeElement !== a) a.value = b.getAttribute("value") ?? a.value;
  }
}

function syncSelect(a: HTMLSelectElement): void {
  const chosen = [...a.options].findIndex((o) => o.hasAttribute("selected"));
  a.selectedIndex = chosen >= 0 ? chosen : 0;
}

/** Where `target` (an element) shows up within the next few nodes of `list`, or -1. */
function ahead(list: Node[], from: number, target: Node): number {
  if (!(target instanceof Element)) return -1;
  for (let k = from; k < Math.min(list.length, from + 4); k++) if (list[k] instanceof Element && sameNode(list[k], target)) return k;
  return -1;
}

export function morphChildren(into: Node, from: Node): void {
  const want = [...from.childNodes];
  for (let i = 0; i < want.length; i++) {
    const b = want[i];
    let a: Node | undefined = into.childNodes[i];
    if (a && !sameNode(a, b) && a instanceof Element && b instanceof Element) {
      // An element was inserted (an error note above a form) or removed: shift
      // instead of replacing everything after it, so later fields keep their state.
      const have = [...into.childNodes];
      const ins = ahead(want, i + 1, a);
      const del = ahead(have, i + 1, b);
      if (ins >= 0 && (del < 0 || ins - i <= del - i)) {
        for (let k = i; k < ins; k++) into.insertBefore(want[k].cloneNode(true), a);
        i = ins;
        a = into.childNodes[i];
      } else if (del >= 0) {
        for (let k = i; k < del; k++) into.removeChild(have[k]);
        a = into.childNodes[i];
      }
    }
    const w = want[i];
    if (!a) {
      into.appendChild(w.cloneNode(true));
    } else if (!sameNode(a, w)) {
      into.replaceChild(w.cloneNode(true), a);
    } else if (a.nodeType === Node.TEXT_NODE || a.nodeType === Node.COMMENT_NODE) {
      if (a.nodeValue !== w.nodeValue) a.nodeValue = w.nodeValue;
    } else if (a instanceof Element && w instanceof Element) {
      syncAttributes(a, w);
      // data-keep: the controller writes this element's content (a strength hint).
      if (!a.hasAttribute("data-keep")) morphChildren(a, w);
      syncProperties(a, w);
      if (a instanceof HTMLSelectElement) syncSelect(a);
    }
  }
  while (into.childNodes.length > want.length) into.removeChild(into.lastChild as Node);
}

export function morph(root: Element, html: string): void {
  const t = document.createElement("template");
  t.innerHTML = html;
  morphChildren(root, t.content);
}
