import { describe, expect, it } from "vitest";
import { morph } from "./morph";

function root(html: string): HTMLElement {
  const r = document.createElement("div");
  r.innerHTML = html;
  return r;
}

describe("morph", () => {
  it("keeps a button across a redraw that only changes text and classes around it", () => {
    const r = root(`<ul><li class="person" data-key="a"><span class="quality">12 ms</span><button data-action="moderate" data-op="mute">Mute</button></li></ul>`);
    const button = r.querySelector("button");
    morph(r, `<ul><li class="person speaking" data-key="a"><span class="quality">15 ms</span><button data-action="moderate" data-op="mute">Mute</button></li></ul>`);
    expect(r.querySelector("button")).toBe(button);
    expect(r.querySelector("li")?.className).toBe("person speaking");
    expect(r.querySelector(".quality")?.textContent).toBe("15 ms");
  });

  it("keeps a field with what is typed in it and its focus", () => {
    const r = root(`<form data-form="chat"><input id="chat-text" name="text"></form><ol></ol>`);
    document.body.append(r);
    const field = r.querySelector("input") as HTMLInputElement;
    field.value = "half a sent";
    field.focus();
    morph(r, `<form data-form="chat"><input id="chat-text" name="text"></form><ol><li>new line</li></ol>`);
    expect(r.querySelector("input")).toBe(field);
    expect(field.value).toBe("half a sent");
    expect(document.activeElement).toBe(field);
    r.remove();
  });

  it("never reuses a field for a different one (a passphrase does not turn into a title)", () => {
    const r = root(`<form data-form="unlock"><input name="passphrase" type="password"></form>`);
    (r.querySelector("input") as HTMLInputElement).value = "secret words";
    morph(r, `<form data-form="host"><input name="title"></form>`);
    const title = r.querySelector("input") as HTMLInputElement;
    expect(title.name).toBe("title");
    expect(title.value).toBe("");
  });

  it("produces exactly the new markup: people added, removed and reordered", () => {
    const r = root(`<ul><li data-key="a">A</li><li data-key="b">B</li><li data-key="c">C</li></ul>`);
    const next = `<ul><li data-key="c" class="x">C</li><li data-key="d">D</li></ul><p>end</p>`;
    morph(r, next);
    expect(r.innerHTML).toBe(next);
  });

  it("drops attributes the new markup no longer has", () => {
    const r = root(`<button data-action="hand" aria-pressed="true" disabled>Lower hand</button>`);
    morph(r, `<button data-action="hand" aria-pressed="false">Raise hand</button>`);
    expect(r.innerHTML).toBe(`<button data-action="hand" aria-pressed="false">Raise hand</button>`);
  });
});
