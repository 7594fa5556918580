import { describe, expect, it } from "vitest";
import { PushToTalk } from "./ptt";

function setup(key: string | null = "Space", active = true) {
  const calls: boolean[] = [];
  const ptt = new PushToTalk({ key: () => key, active: () => active, setMuted: (m) => void calls.push(m) });
  return { ptt, calls };
}

describe("push-to-talk", () => {
  it("holding the key unmutes, releasing it mutes", () => {
    const { ptt, calls } = setup();
    expect(ptt.keydown({ code: "Space", repeat: false })).toBe(true);
    expect(calls).toEqual([false]);
    expect(ptt.keyup({ code: "Space" })).toBe(true);
    expect(calls).toEqual([false, true]);
  });

  it("auto-repeat while held sends nothing more", () => {
    const { ptt, calls } = setup();
    ptt.keydown({ code: "Space", repeat: false });
    ptt.keydown({ code: "Space", repeat: true });
    ptt.keydown({ code: "Space", repeat: true });
    expect(calls).toEqual([false]);
  });

  it("losing window focus while held mutes (the keyup goes elsewhere)", () => {
    const { ptt, calls } = setup();
    ptt.keydown({ code: "Space", repeat: false });
    ptt.blur();
    expect(calls).toEqual([false, true]);
    ptt.blur();
    expect(calls).toEqual([false, true]);
  });

  it("other keys, or no key set, are not push-to-talk", () => {
    const { ptt, calls } = setup();
    expect(ptt.keydown({ code: "KeyM", repeat: false })).toBe(false);
    const off = setup(null);
    expect(off.ptt.keydown({ code: "Space", repeat: false })).toBe(false);
    expect([...calls, ...off.calls]).toEqual([]);
  });

  it("off stage the key is swallowed but no microphone is opened", () => {
    const { ptt, calls } = setup("Space", false);
    expect(ptt.keydown({ code: "Space", repeat: false })).toBe(true);
    ptt.keyup({ code: "Space" });
    expect(calls).toEqual([]);
  });
});
