// Redraws without replacing what is still there. Level and link events change the room
// view several times a second (a speaking ring, a round-trip time); replacing the whole
// tree each time made a button pressed across a redraw lose its click (the press and
// the release landed on different elements), and took focus and caret away while typing.

/** Elements are the same one across redraws when tag and identity attributes agree. */
const IDENTITY = ["id", "name", "data-key", "data-form", "data-testid", "data-action", "data-op", "type"];

function same(a: Node, b: Node): boolean {
  if (a.nodeType !== b.nodeType) return false;
  if (a.nodeType !== Node.ELEMENT_NODE) return true;
  const x = a as Element;
  const y = b as Element;
  return x.tagName === y.tagName && IDENTITY.every((n) => x.getAttribute(n) === y.getAttribute(n));
}

function syncAttributes(into: Element, from: Element) {
  for (const a of [...into.attributes]) if (!from.hasAttribute(a.name)) into.removeAttribute(a.name);
  for (const a of [...from.attributes]) if (into.getAttribute(a.name) !== a.value) into.setAttribute(a.name, a.value);
}

/** Makes the children of `into` match those of `from`, keeping every node that matches
 * in place (and so what a person is pressing or typing in). Consumes `from`. */
export function morphChildren(into: Element, from: Element) {
  const olds = [...into.childNodes];
  const news = [...from.childNodes];
  news.forEach((n, i) => {
    const o = olds[i];
    if (!o) {
      into.appendChild(n);
    } else if (!same(o, n)) {
      into.replaceChild(n, o);
    } else if (o.nodeType === Node.ELEMENT_NODE) {
      syncAttributes(o as Element, n as Element);
      morphChildren(o as Element, n as Element);
    } else if (o.nodeValue !== n.nodeValue) {
      o.nodeValue = n.nodeValue;
    }
  });
  for (const o of olds.slice(news.length)) o.remove();
}

/** Redraws `root` to show `html`. */
export function morph(root: Element, html: string) {
  const next = document.createElement("template");
  next.innerHTML = html;
  const holder = document.createElement("div");
  holder.append(next.content);
  morphChildren(root, holder);
}
