import { describe, expect, it } from "vitest";
import type { Contact, HistoryMessage, HistoryRoom, RoomInfo, Settings } from "./api";
import {
  CHAT_PAGE,
  PAGE,
  audience,
  canModerate,
  chatCursor,
  chatPage,
  contact,
  historyCursor,
  historyPage,
  initial,
  openDetail,
  reduce,
  settingsSaved,
  stage,
  verified,
  type UiState,
} from "./state";

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
  it("a stage invitation opens a prompt naming the moderator and changes no role", () => {
    const listening = reduce(initial, { event: "joined", room: room({ members: room().members.map((m) => ({ ...m, me: m.key === "bb" })) }) });
    const s = reduce({ ...listening, menu: "aa" }, { event: "stage_invited", key: "aa", name: "Ada" });
    expect(s.dialog).toEqual({ kind: "stage_invite", key: "aa", name: "Ada" });
    expect(s.menu).toBeUndefined();
    expect(s.room).toBe(listening.room);
  });

  it("the stage prompt closes once we are on stage, when we leave, or when the host changes", () => {
    const asked: UiState = { ...reduce(initial, { event: "joined", room: room() }), dialog: { kind: "stage_invite", key: "aa", name: "Ada" } };
    const meListening = room({ members: room().members.map((m) => ({ ...m, me: m.key === "bb" })) });
    const still = reduce(asked, { event: "room", room: meListening });
    expect(still.dialog?.kind).toBe("stage_invite");
    const onStage = room({ members: meListening.members.map((m) => (m.key === "bb" ? { ...m, role: "speaker" as const } : m)) });
    expect(reduce(still, { event: "room", room: onStage }).dialog).toBeUndefined();
    expect(reduce(still, { event: "left", reason: "ended" }).dialog).toBeUndefined();
    expect(reduce(still, { event: "host_changed", host: "cc", invite: null }).dialog).toBeUndefined();
    // Other dialogs stay open on a host change.
    expect(reduce({ ...still, dialog: { kind: "invite" } }, { event: "host_changed", host: "cc", invite: null }).dialog).toEqual({ kind: "invite" });
  });

  it("a lapsed invitation closes the prompt and says so; the host hears nobody answered", () => {
    const asked: UiState = { ...reduce(initial, { event: "joined", room: room() }), dialog: { kind: "stage_invite", key: "aa", name: "Ada" } };
    const lapsed = reduce(asked, { event: "stage_invite_lapsed", key: "aa", name: "Ada" });
    expect(lapsed.dialog).toBeUndefined();
    expect(lapsed.toasts).toContain("The invitation to speak from Ada lapsed");
    // Another dialog the user opened since stays.
    expect(reduce({ ...asked, dialog: { kind: "invite" } }, { event: "stage_invite_lapsed", key: "aa", name: "Ada" }).dialog).toEqual({ kind: "invite" });
    const host = reduce(reduce(initial, { event: "joined", room: room() }), { event: "stage_invite_unanswered", key: "bb", name: "Bo", by: "aa" });
    expect(host.toasts).toContain("Bo did not answer the invitation to speak");
  });

  it("a declined invitation is told to the host in a toast", () => {
    const s = reduce(reduce(initial, { event: "joined", room: room() }), { event: "stage_invite_declined", key: "bb", name: "Bo", by: "aa" });
    expect(s.toasts).toContain("Bo declined the invitation to speak");
  });

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

describe("screens and history state", () => {
  const hist = (id: number, over: Partial<HistoryRoom> = {}): HistoryRoom => ({
    id,
    title: `Room ${id}`,
    hosted: false,
    started_at: id * 1000,
    ended_at: id * 1000 + 500,
    participants: [],
    message_count: 0,
    ...over,
  });
  const msg = (id: number): HistoryMessage => ({ id, at: id, from: "aa", name: "Ada", text: `m${id}`, mine: false });

  it("roster changes do not pull the user out of Settings back into the room", () => {
    let s = reduce(initial, { event: "joined", room: room() });
    s = { ...s, screen: "settings" };
    s = reduce(s, { event: "room", room: room({ title: "Renamed" }) });
    expect(s.screen).toBe("settings");
    expect(s.room?.title).toBe("Renamed");
  });

  it("a new invite after a removal or a revocation replaces the old one and says why", () => {
    const s = reduce({ ...initial, invite: "salon:old" }, { event: "invite_changed", invite: "salon:new", reason: "removal" });
    expect(s.invite).toBe("salon:new");
    expect(s.toasts.at(-1)).toMatch(/old one stopped working/);
    const r = reduce(s, { event: "invite_changed", invite: "salon:newer", reason: "revoked" });
    expect(r.invite).toBe("salon:newer");
    expect(r.toasts.at(-1)).toMatch(/revoked/);
  });

  it("the first room info (hosting) opens the room screen", () => {
    const s = reduce({ ...initial, screen: "home" }, { event: "room", room: room() });
    expect(s.screen).toBe("room");
  });

  it("leaving while on another screen stays there; leaving from the room goes home", () => {
    const inRoom = reduce(initial, { event: "joined", room: room() });
    expect(reduce({ ...inRoom, screen: "history" }, { event: "left", reason: "ended" }).screen).toBe("history");
    const out = reduce({ ...inRoom, menu: "bb", dialog: { kind: "invite" } }, { event: "left", reason: "ended" });
    expect(out.screen).toBe("home");
    expect(out.menu).toBeUndefined();
    expect(out.dialog).toBeUndefined();
  });

  it("a person's open menu closes when they leave the roster", () => {
    let s = reduce(initial, { event: "joined", room: room() });
    s = { ...s, menu: "bb" };
    const r = room();
    r.members = r.members.filter((m) => m.key !== "bb");
    expect(reduce(s, { event: "room", room: r }).menu).toBeUndefined();
  });

  it("history pages append, skip duplicates, and page back from the oldest id", () => {
    const first = Array.from({ length: PAGE }, (_, i) => hist(100 - i));
    let s = historyPage(initial, first, false);
    expect(s.history.more).toBe(true);
    expect(historyCursor(s)).toBe(100 - PAGE + 1);
    s = historyPage(s, [hist(100 - PAGE + 1), hist(3), hist(2)], true);
    expect(s.history.rooms.map((r) => r.id).slice(-3)).toEqual([81, 3, 2]);
    expect(s.history.more).toBe(false);
    // A fresh first page replaces the list.
    expect(historyPage(s, [hist(7)], false).history.rooms.map((r) => r.id)).toEqual([7]);
  });

  it("chat pages arrive newest first and show oldest first; older pages go on top", () => {
    let s = openDetail(initial, hist(5));
    expect(s.screen).toBe("history");
    s = chatPage(s, 5, Array.from({ length: CHAT_PAGE }, (_, i) => msg(200 - i)));
    expect(s.detail?.messages[0].id).toBe(200 - CHAT_PAGE + 1);
    expect(s.detail?.messages.at(-1)?.id).toBe(200);
    expect(s.detail?.more).toBe(true);
    expect(chatCursor(s)).toBe(151);
    s = chatPage(s, 5, [msg(150), msg(149)]);
    expect(s.detail?.messages.slice(0, 3).map((m) => m.id)).toEqual([149, 150, 151]);
    expect(s.detail?.more).toBe(false);
    // A late page for another room is ignored.
    expect(chatPage(s, 6, [msg(1)])).toBe(s);
  });

  it("saved settings replace the old ones and clear the settings error and key capture", () => {
    const settings: Settings = { input_device: "USB", output_device: null, push_to_talk_key: "Space", noise_suppression: true, echo_cancellation: false, theme: "dark" };
    const s = settingsSaved({ ...initial, capturing: true, notes: { settings: "device missing" } }, settings);
    expect(s.settings).toEqual(settings);
    expect(s.capturing).toBe(false);
    expect(s.notes.settings).toBeUndefined();
  });

  it("verifying marks the contact and the open safety dialog; a changed key unmarks it", () => {
    const c: Contact = { key: "bb", name: "Bo", verified: false, key_changed: true, safety_number: "1".repeat(60), last_seen: null };
    let s: UiState = { ...initial, contacts: { status: "ok", value: [c] }, dialog: { kind: "safety", number: { key: "bb", name: "Bo", safety_number: "1".repeat(60), verified: false } } };
    s = verified(s, "bb", true);
    expect(contact(s, "bb")).toMatchObject({ verified: true, key_changed: false });
    expect(s.dialog?.kind === "safety" && s.dialog.number.verified).toBe(true);
    s = reduce(s, { event: "key_changed", name: "Bo", key: "bb" });
    expect(contact(s, "bb")).toMatchObject({ verified: false, key_changed: true });
  });

  it("mic levels outside a room (mic test) still move the input meter", () => {
    const s = reduce({ ...initial, screen: "settings" }, { event: "levels", input_dbfs: -12, transmitting: false, peers: [] });
    expect(s.inputDbfs).toBe(-12);
  });
});
