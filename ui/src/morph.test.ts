import { describe, expect, it } from "vitest";
import { morph } from "./morph";

describe("morph", () => {
  it("keeps elements, typed text and focus while attributes and text change", () => {
    const root = document.createElement("div");
    document.body.appendChild(root);
    morph(root, `<p class="a">one</p><input id="t"><ul><li data-key="x">X</li></ul>`);
    const input = root.querySelector("input") as HTMLInputElement;
    input.value = "typed";
    input.focus();
    morph(root, `<p class="b">two</p><input id="t"><ul><li data-key="x" class="speaking">X</li></ul>`);
    expect(root.querySelector("input")).toBe(input);
    expect(input.value).toBe("typed");
    expect(document.activeElement).toBe(input);
    expect(root.querySelector("p")?.className).toBe("b");
    expect(root.querySelector("p")?.textContent).toBe("two");
    expect(root.querySelector("li")?.className).toBe("speaking");
    root.remove();
  });

  it("a different key replaces the element instead of patching another person into it", () => {
    const root = document.createElement("div");
    morph(root, `<li data-key="x">X</li>`);
    const x = root.firstElementChild;
    morph(root, `<li data-key="y">Y</li>`);
    expect(root.firstElementChild).not.toBe(x);
    expect(root.innerHTML).toBe(`<li data-key="y">Y</li>`);
  });

  it("checked boxes and chosen options follow the view, so a refused change reverts", () => {
    const root = document.createElement("div");
    morph(root, `<input type="checkbox" checked><select><option value="a" selected>a</option><option value="b">b</option></select>`);
    const box = root.querySelector("input") as HTMLInputElement;
    const sel = root.querySelector("select") as HTMLSelectElement;
    box.checked = false;
    sel.value = "b";
    morph(root, `<input type="checkbox" checked><select><option value="a" selected>a</option><option value="b">b</option></select>`);
    expect(box.checked).toBe(true);
    expect(sel.value).toBe("a");
  });

  it("removes what the new HTML no longer has", () => {
    const root = document.createElement("div");
    morph(root, `<p>1</p><p>2</p><p>3</p>`);
    morph(root, `<p>1</p>`);
    expect(root.children).toHaveLength(1);
  });
});

describe("morph shifting", () => {
  it("an inserted error note above a form keeps the fields below it (same elements)", () => {
    const root = document.createElement("div");
    const form = (err: string) => `<form>\n  <h2>T</h2>\n  ${err}\n  <label><input name="a"></label>\n  <label><select name="s"><option>x</option></select></label>\n</form>`;
    morph(root, form(""));
    const input = root.querySelector("input");
    const select = root.querySelector("select");
    morph(root, form(`<p class="error">bad</p>`));
    expect(root.querySelector(".error")?.textContent).toBe("bad");
    expect(root.querySelector("input")).toBe(input);
    expect(root.querySelector("select")).toBe(select);
    morph(root, form(""));
    expect(root.querySelector(".error")).toBeNull();
    expect(root.querySelector("input")).toBe(input);
    expect(root.querySelector("form")?.innerHTML).toBe(form("").replace(/^<form>|<\/form>$/g, ""));
  });
});
