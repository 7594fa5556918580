import { describe, expect, it } from "vitest";
import type { RoomInfo } from "./api";
import { audience, canModerate, initial, reduce, stage } from "./state";

const room = (over: Partial<RoomInfo> = {}): RoomInfo => ({
  title: "Jazz",
  epoch: 1,
  safety_code: "1234 5678 9012",
  host: "aa",
  members: [
    { key: "aa", name: "Ada", role: "host", hand_raised: false, muted: false, me: true },
    { key: "bb", name: "Bo", role: "listener", hand_raised: false, muted: false, me: false },
  ],
  ...over,
});

describe("reduce", () => {
  it("joining a room shows the room with its stage and audience", () => {
    const s = reduce(initial, { event: "joined", room: room() });
    expect(s.screen).toBe("room");
    expect(stage(s).map((m) => m.name)).toEqual(["Ada"]);
    expect(audience(s).map((m) => m.name)).toEqual(["Bo"]);
    expect(canModerate(s)).toBe(true);
  });

  it("a raised hand makes a toast for moderators", () => {
    const s0 = reduce(initial, { event: "joined", room: room() });
    const r = room();
    r.members[1].hand_raised = true;
    const s1 = reduce(s0, { event: "room", room: r });
    expect(s1.toasts).toContain("Bo raised a hand");
  });

  it("being promoted tells the listener they were invited to speak", () => {
    const mine = room({
      members: [
        { key: "aa", name: "Ada", role: "host", hand_raised: false, muted: false, me: false },
        { key: "bb", name: "Bo", role: "listener", hand_raised: true, muted: false, me: true },
      ],
    });
    const s0 = reduce(initial, { event: "joined", room: mine });
    const promoted = structuredClone(mine);
    promoted.members[1].role = "speaker";
    promoted.members[1].hand_raised = false;
    expect(reduce(s0, { event: "room", room: promoted }).toasts).toContain("You were invited to speak");
  });

  it("chat lines accumulate in order", () => {
    let s = reduce(initial, { event: "joined", room: room() });
    s = reduce(s, { event: "chat", from: "bb", name: "Bo", text: "hi" });
    s = reduce(s, { event: "chat", from: "aa", name: "Ada", text: "hello" });
    expect(s.chat.map((c) => c.text)).toEqual(["hi", "hello"]);
  });

  it("levels light the speaking ring of the peers who speak", () => {
    let s = reduce(initial, { event: "joined", room: room() });
    s = reduce(s, { event: "levels", input_dbfs: -80, transmitting: true, peers: [{ key: "bb", name: "Bo", rms_dbfs: -20, speaking: true }] });
    expect(s.speaking).toEqual({ bb: true, aa: false });
  });

  it("being removed returns home with the reason", () => {
    let s = reduce(initial, { event: "joined", room: room() });
    s = reduce(s, { event: "left", reason: "removed" });
    expect(s.screen).toBe("home");
    expect(s.room).toBeUndefined();
    expect(s.toasts).toContain("You were removed from the room");
  });

  it("a failed join explains itself on the home screen", () => {
    const s = reduce({ ...initial, screen: "room" }, { event: "join_failed", message: "the room is full" });
    expect(s.screen).toBe("home");
    expect(s.error).toBe("the room is full");
  });
});
