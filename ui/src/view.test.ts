import { describe, expect, it } from "vitest";
import { initial, reduce } from "./state";
import { esc, render, strength } from "./view";

const joined = reduce(initial, {
  event: "joined",
  room: {
    title: "<b>Jazz</b>",
    epoch: 1,
    safety_code: "1111 2222 3333",
    host: "aa",
    members: [
      { key: "aa", name: "Ada", role: "host", hand_raised: false, muted: false, me: true },
      { key: "bb", name: "Bo <script>", role: "listener", hand_raised: true, muted: false, me: false },
    ],
  },
});

describe("render", () => {
  it("escapes names and titles from the network", () => {
    const html = render(joined);
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;b&gt;Jazz&lt;/b&gt;");
    expect(esc(`"'&`)).toBe("&quot;&#39;&amp;");
  });

  it("shows the safety code, the raised hand to the host and moderator actions", () => {
    document.body.innerHTML = render(joined);
    expect(document.querySelector("[data-testid=safety-code]")?.textContent).toBe("1111 2222 3333");
    expect(document.querySelector(".hands")?.textContent).toContain("Bo");
    const ops = [...document.querySelectorAll<HTMLElement>("[data-target=bb]")].map((b) => b.dataset.op);
    expect(ops).toContain("invite_to_stage");
    expect(ops).toContain("remove");
  });

  it("every button has a text or an accessible label", () => {
    document.body.innerHTML = render(joined);
    for (const b of document.querySelectorAll("button")) {
      expect((b.textContent ?? "").trim() || b.getAttribute("aria-label")).toBeTruthy();
    }
  });

  it("first run asks for a name and a passphrase twice", () => {
    document.body.innerHTML = render({ ...initial, screen: "create" });
    expect(document.querySelectorAll("input[type=password]").length).toBe(2);
    expect(document.querySelector("input[name=name]")).not.toBeNull();
  });

  it("the strength hint grows with length and variety", () => {
    expect(strength("abc")).toBe("weak");
    expect(strength("abcdefgh")).toBe("fair");
    expect(strength("Correct-Horse-42")).toBe("strong");
  });
});
