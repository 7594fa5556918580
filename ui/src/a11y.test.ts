// An automated accessibility check (axe-core) of every screen the view draws, in the
// document the app runs in (index.html's landmarks and live regions around #app).
import axe from "axe-core";
import { describe, expect, it } from "vitest";
import type { Contact, HistoryRoom, RoomInfo, Settings } from "./api";
import { chatPage, historyPage, initial, openDetail, reduce, type UiState } from "./state";
import { render } from "./view";

// Rules that need layout, which a DOM without one cannot give: colour contrast reads
// computed colours over painted backgrounds.
const NEEDS_LAYOUT = { "color-contrast": { enabled: false } };

async function violations(s: UiState, speech = ""): Promise<string[]> {
  document.documentElement.lang = "en";
  document.title = "Salon";
  document.body.innerHTML = `<main id="app"></main><div id="toasts" role="status" aria-live="polite" aria-atomic="false"></div>`;
  const root = document.getElementById("app") as HTMLElement;
  render(s, root, speech);
  // As the controller does: a rendered dialog is shown as a modal.
  root.querySelector("dialog")?.showModal();
  const result = await axe.run(document, { rules: NEEDS_LAYOUT });
  return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.map((n) => n.html).join("\n    ")}`);
}

const room: RoomInfo = {
  title: "Late owls",
  epoch: 1,
  safety_code: "acid acorn acre acts / afar affix aged agent / agile aging agony ahead / aim ajar alarm alias / alibi alien alike alive",
  host: "aa",
  members: [
    { key: "aa", name: "Ada", role: "host", hand_raised: false, muted: false, me: true },
    { key: "mm", name: "Mo", role: "moderator", hand_raised: false, muted: true, me: false },
    { key: "bb", name: "Bo", role: "listener", hand_raised: true, muted: false, me: false },
    { key: "cc", name: "Cy", role: "listener", hand_raised: false, muted: false, me: false },
  ],
};
const asListener: RoomInfo = { ...room, members: room.members.map((m) => ({ ...m, me: m.key === "bb" })) };
const settings: Settings = { input_device: "USB Mic", output_device: null, push_to_talk_key: "KeyT", noise_suppression: true, echo_cancellation: false, theme: "system" };
const past: HistoryRoom = {
  id: 9,
  title: "Friday jazz",
  hosted: true,
  started_at: Date.UTC(2026, 2, 3, 18, 0),
  ended_at: Date.UTC(2026, 2, 3, 18, 42),
  participants: [
    { key: "aa", name: "Ada", role: "host", joined_at: 1, left_at: 5 },
    { key: "bb", name: "Bo", role: "speaker", joined_at: 2, left_at: 5 },
  ],
  message_count: 2,
};
const contacts: Contact[] = [
  { key: "bb", name: "Bo", verified: true, key_changed: false, safety_number: "", last_seen: 1000 },
  { key: "cc", name: "Cy", verified: false, key_changed: true, safety_number: "", last_seen: null },
];
const profile = { name: "Ada", fingerprint: "12345 67890" };
const signedIn: UiState = { ...initial, screen: "home", profile, settings, contacts: { status: "ok", value: contacts }, recent: { status: "ok", value: [past] } };

function inRoom(r: RoomInfo): UiState {
  let s = reduce({ ...signedIn, invite: "salon:abcdef" }, { event: "joined", room: r });
  s = reduce(s, { event: "links", links: [{ key: "bb", name: "Bo", rtt_ms: 40, audio_received: 100, audio_lost: 0, jitter_buffer_ms: 40, reported_loss_permille: null, up: true, path: "relayed", via: "mm" }] });
  s = reduce(s, { event: "levels", input_dbfs: -20, transmitting: true, peers: [{ key: "mm", name: "Mo", rms_dbfs: -20, speaking: true }] });
  s = reduce(s, { event: "chat", from: "aa", name: "Ada", text: "welcome" });
  return reduce(s, { event: "chat", from: "bb", name: "Bo", text: "hello" });
}

const host = inRoom(room);
const listener = inRoom(asListener);
const safety = { key: "bb", name: "Bo", safety_number: "1".repeat(60), verified: false };
const history = historyPage({ ...signedIn, screen: "history" }, [past, { ...past, id: 8, ended_at: null, hosted: false }], false);
const detail = chatPage(openDetail(history, past), 9, [
  { id: 2, at: 2000, from: "bb", name: "Bo", text: "later", mine: false },
  { id: 1, at: 1000, from: "aa", name: "Ada", text: "earlier", mine: true },
]);

const screens: [string, UiState, string?][] = [
  ["starting", initial],
  ["first run", { ...initial, screen: "create", error: "The passphrases differ" }],
  ["unlock", { ...initial, screen: "unlock", error: "wrong passphrase: try again" }],
  ["home", signedIn],
  ["home, loading and failed lists", { ...signedIn, contacts: { status: "loading" }, recent: { status: "failed", message: "locked" } }],
  ["home while in a room", { ...host, screen: "home", error: "Could not join" }],
  ["room as host, a person's menu open", { ...host, menu: "cc" }, "Mo is speaking"],
  ["room as host, a moderator's menu open", { ...host, menu: "mm" }],
  ["room as listener, hand raised", listener],
  ["room as listener, a person's menu open", { ...listener, menu: "aa" }],
  ["room, joining", { ...signedIn, screen: "room" }],
  ["invite dialog", { ...host, dialog: { kind: "invite" } }],
  ["invite dialog with a forwarded port", { ...host, portMapping: "198.51.100.7:45000", dialog: { kind: "invite" } }],
  ["safety dialog", { ...host, dialog: { kind: "safety", number: safety } }],
  ["safety dialog, verified, with an error", { ...host, dialog: { kind: "safety", number: { ...safety, verified: true }, error: "could not save" } }],
  ["stage invitation", { ...listener, dialog: { kind: "stage_invite", key: "aa", name: "Ada" } }],
  ["history", history],
  ["history, empty", historyPage({ ...signedIn, screen: "history" }, [], false)],
  ["history detail", detail],
  ["history detail, no messages", chatPage(openDetail(history, past), 9, [])],
  ["settings", { ...signedIn, screen: "settings", devices: { status: "ok", value: { inputs: ["Built-in"], outputs: ["Speakers"] } }, notes: { passphrase: { ok: true, text: "Passphrase changed." }, backup: { ok: false, text: "disk full" } } }],
  ["settings, capturing a key, no devices", { ...signedIn, screen: "settings", capturing: true, devices: { status: "failed", message: "no audio" }, notes: { settings: "no input device", mic: "no microphone" } }],
  ["settings, loading", { ...signedIn, screen: "settings", settings: undefined }],
];

describe("accessibility (axe)", () => {
  it.each(screens)("%s has no violations", async (_name, s, speech) => {
    expect(await violations(s, speech)).toEqual([]);
  });

  it("the check itself sees what it should (a nameless button, a prohibited label)", async () => {
    document.body.innerHTML = `<main><h1>x</h1><button></button><span aria-label="muted"><svg aria-hidden="true"></svg></span></main>`;
    const ids = (await axe.run(document, { rules: NEEDS_LAYOUT })).violations.map((v) => v.id);
    expect(ids).toEqual(expect.arrayContaining(["button-name", "aria-prohibited-attr"]));
  });
});
