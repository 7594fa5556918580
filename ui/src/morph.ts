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

export function morphChildren(into: Node, from: Node): void {
  const want = [...from.childNodes];
  for (let i = 0; i < want.length; i++) {
    const b = want[i];
    const a = into.childNodes[i];
    if (!a) {
      into.appendChild(b.cloneNode(true));
    } else if (!sameNode(a, b)) {
      into.replaceChild(b.cloneNode(true), a);
    } else if (a.nodeType === Node.TEXT_NODE || a.nodeType === Node.COMMENT_NODE) {
      if (a.nodeValue !== b.nodeValue) a.nodeValue = b.nodeValue;
    } else if (a instanceof Element && b instanceof Element) {
      syncAttributes(a, b);
      // data-keep: the controller writes this element's content (a strength hint).
      if (!a.hasAttribute("data-keep")) morphChildren(a, b);
      syncProperties(a, b);
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
