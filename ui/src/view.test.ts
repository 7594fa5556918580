import { describe, expect, it } from "vitest";
import type { HistoryRoom } from "./api";
import { chatPage, historyPage, initial, openDetail, reduce, type UiState } from "./state";
import { render, strength } from "./view";

/** Renders a state into a fresh root in the document, as the app does. */
function show(s: UiState, speech = ""): HTMLElement {
  const root = document.createElement("main");
  document.body.replaceChildren(root);
  render(s, root, speech);
  return root;
}

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
  it("names and titles from the network stay text, never markup", () => {
    const root = show({ ...joined, chat: [{ from: "bb", name: `Bo"><img src=x onerror=alert(1)>`, text: "<i>hi</i> & 'bye'" }] });
    expect(root.querySelector("script, img, b, h1 *, [data-testid=chat] i")).toBeNull();
    expect(root.innerHTML).toContain("&lt;b&gt;Jazz&lt;/b&gt;");
    expect(root.querySelector("h1")?.textContent).toBe("<b>Jazz</b>");
    expect(root.querySelector("[data-testid=chat] li")?.textContent).toBe(`Bo"><img src=x onerror=alert(1)> <i>hi</i> & 'bye'`);
    // Attribute values too: the person's label is exactly the name.
    expect(root.querySelector("[data-key=bb]")?.getAttribute("aria-label")).toBe("Bo <script>");
  });

  it("shows the safety code, the raised hand to the host, and a one-click invite on audience cards", () => {
    show(joined);
    expect(document.querySelector("[data-testid=safety-code]")?.textContent).toBe("1111 2222 3333");
    expect(document.querySelector(".hands")?.textContent).toContain("Bo");
    // The WebDriver scenario clicks this one: it must be a plain button in the audience.
    expect(document.querySelector("[data-testid=audience] button[data-op=invite_to_stage]")).not.toBeNull();
    // The rest waits in the person's menu.
    expect(document.querySelector("[data-op=remove]")).toBeNull();
  });

  it("shows the 20-word safety code in five groups that wrap only between groups", () => {
    const code = "acid acorn acre acts / afar affix aged agent / agile aging agony ahead / aim ajar alarm alias / alibi alien alike alive";
    show({ ...joined, room: { ...joined.room!, safety_code: code } });
    const el = document.querySelector("[data-testid=safety-code]");
    expect(el?.textContent).toBe(code);
    const groups = [...(el?.querySelectorAll(".code-group") ?? [])].map((g) => g.textContent);
    expect(groups).toEqual(["acid acorn acre acts", "afar affix aged agent", "agile aging agony ahead", "aim ajar alarm alias", "alibi alien alike alive"]);
  });

  it("the person menu holds volume, safety numbers and the moderator actions", () => {
    show({ ...joined, menu: "bb", volumes: { bb: 1.5 } });
    const menu = document.querySelector("[data-menu=bb]");
    expect(menu?.getAttribute("role")).toBe("dialog");
    const slider = menu?.querySelector<HTMLInputElement>("input[type=range][data-volume=bb]");
    expect(slider?.getAttribute("min")).toBe("0");
    expect(slider?.getAttribute("max")).toBe("200");
    expect(slider?.getAttribute("value")).toBe("150");
    const items = [...(menu?.querySelectorAll<HTMLElement>("[role=menu] [role=menuitem]") ?? [])];
    expect(items.map((b) => b.dataset.action)).toContain("safety");
    expect(items.map((b) => b.dataset.op)).toEqual(expect.arrayContaining(["invite_to_stage", "make_moderator", "remove"]));
    expect(document.querySelector("[data-action=menu][data-target=bb]")?.getAttribute("aria-expanded")).toBe("true");
  });

  it("a listener sees only volume and safety numbers in a person's menu", () => {
    const asListener = structuredClone(joined);
    if (asListener.room) {
      asListener.room.members[0].me = false;
      asListener.room.members[1].me = true;
    }
    show({ ...asListener, menu: "aa" });
    expect(document.querySelectorAll("[data-menu=aa] [data-action=moderate]")).toHaveLength(0);
    expect(document.querySelector("[data-menu=aa] [data-action=safety]")).not.toBeNull();
  });

  it("people keep an aria-label of exactly their name, which WebDriver tests select on", () => {
    show({ ...joined, menu: "bb" });
    expect(document.querySelectorAll(`[aria-label="Bo <script>"]`)).toHaveLength(1);
    expect(document.querySelector(`[data-testid=audience] [aria-label="Bo <script>"]`)?.tagName).toBe("LI");
  });

  it("link quality shows as bars with a spoken label", () => {
    const s = reduce(joined, { event: "links", links: [{ key: "bb", name: "Bo", rtt_ms: 400, audio_received: 90, audio_lost: 10, jitter_buffer_ms: 60, reported_loss_permille: null, up: true, path: "relayed", via: "aa" }] });
    show(s);
    const q = document.querySelector("[data-key=bb] .link");
    expect(q?.getAttribute("data-quality")).toBe("poor");
    expect(q?.getAttribute("aria-label")).toContain("poor");
    expect(q?.querySelectorAll("i.on")).toHaveLength(1);
    // The path is part of the label: who relays, by name.
    expect(q?.getAttribute("aria-label")).toMatch(/relayed via \S/);
    expect(q?.getAttribute("data-path")).toBe("relayed");
    const direct = reduce(s, { event: "link_path", key: "bb", name: "Bo", path: "direct", via: null, via_name: null });
    show(direct);
    expect(document.querySelector("[data-key=bb] .link")?.getAttribute("aria-label")).toMatch(/, direct$/);
  });

  it("the invite stays visible as text and the Invite dialog shows it as a QR code", () => {
    const s = { ...joined, invite: "salon:abcdef" };
    show(s);
    expect(document.querySelector("[data-testid=invite]")?.textContent).toBe("salon:abcdef");
    expect(document.querySelector("[data-action=show-invite]")).not.toBeNull();
    show({ ...s, dialog: { kind: "invite" } });
    expect(document.querySelector("[role=dialog][aria-modal=true] [data-testid=invite-qr] svg")).not.toBeNull();
    expect(document.querySelector("[role=dialog] button[data-action=revoke-invite]")).not.toBeNull();
    // Whether outsiders can join is said plainly, with what to do when they cannot.
    expect(document.querySelector("[data-testid=reachability]")?.textContent).toContain("forward a UDP port");
    const mapped = reduce({ ...s, dialog: { kind: "invite" } }, { event: "port_mapping", external: "198.51.100.7:45000" });
    show(mapped);
    expect(document.querySelector("[data-testid=reachability]")?.textContent).toContain("forwards 198.51.100.7:45000");
  });

  it("the safety dialog shows the number in 12 groups of 5 and offers to verify or unmark", () => {
    const number = { key: "bb", name: "Bo", safety_number: "123456789012345678901234567890123456789012345678901234567890", verified: false };
    show({ ...joined, dialog: { kind: "safety", number } });
    const groups = [...document.querySelectorAll(".safety-number li")].map((l) => l.textContent);
    expect(groups).toHaveLength(12);
    expect(groups[0]).toBe("12345");
    expect(groups[1]).toBe("67890");
    expect(document.querySelector("[data-action=verify]")?.textContent).toBe("Mark as verified");
    show({ ...joined, dialog: { kind: "safety", number: { ...number, verified: true } } });
    expect(document.querySelector<HTMLElement>("[data-action=verify]")?.dataset.on).toBe("false");
    expect(document.querySelector("[data-action=verify]")?.textContent).toBe("Unmark");
  });

  it("the chat is a log, and who is speaking has its own polite live region", () => {
    const root = show({ ...joined, chat: [{ from: "aa", name: "Ada", text: "hi" }] }, "Bo is speaking");
    const log = root.querySelector("[data-testid=chat]");
    expect(log?.getAttribute("role")).toBe("log");
    expect(log?.getAttribute("aria-label")).toBeTruthy();
    expect(log?.querySelector("li.mine")?.textContent).toBe("Ada hi");
    const live = root.querySelector("[data-testid=speaking-now]");
    expect(live?.getAttribute("aria-live")).toBe("polite");
    expect(live?.classList.contains("sr-only")).toBe(true);
    expect(live?.textContent).toBe("Bo is speaking");
  });

  it("a redraw keeps the elements: typed text, caret and focus stay, people stay keyed", () => {
    const root = document.createElement("main");
    document.body.replaceChildren(root);
    render(joined, root);
    const input = root.querySelector<HTMLInputElement>("#chat-text") as HTMLInputElement;
    const bo = root.querySelector("[data-key=bb]");
    input.focus();
    input.value = "half a sentence";
    input.setSelectionRange(4, 6);
    // A levels event lights Ada; a chat line arrives; Bo is promoted ahead of Ada's card.
    let s = reduce(joined, { event: "levels", input_dbfs: -20, transmitting: true, peers: [] });
    s = reduce(s, { event: "chat", from: "bb", name: "Bo", text: "hello" });
    render(s, root);
    expect(root.querySelector("#chat-text")).toBe(input);
    expect(input.value).toBe("half a sentence");
    expect(document.activeElement).toBe(input);
    expect([input.selectionStart, input.selectionEnd]).toEqual([4, 6]);
    expect(root.querySelector("[data-key=aa]")?.classList.contains("speaking")).toBe(true);
    expect(root.querySelector("[data-key=bb]")).toBe(bo);
    const promoted = reduce(s, { event: "room", room: { ...joined.room!, members: [{ ...joined.room!.members[1], role: "speaker" }, joined.room!.members[0]] } });
    render(promoted, root);
    expect(root.querySelector("[data-testid=stage] [data-key=bb]")?.getAttribute("aria-label")).toBe("Bo <script>");
    expect(root.querySelector("[data-key=aa]")?.getAttribute("aria-label")).toBe("Ada (you)");
    expect(root.querySelector("#chat-text")).toBe(input);
    expect(input.value).toBe("half a sentence");
  });

  it("every button has a text or an accessible label", () => {
    show(joined);
    for (const b of document.querySelectorAll("button")) {
      expect((b.textContent ?? "").trim() || b.getAttribute("aria-label")).toBeTruthy();
    }
  });

  it("first run asks for a name and a passphrase twice", () => {
    show({ ...initial, screen: "create" });
    expect(document.querySelectorAll("input[type=password]").length).toBe(2);
    expect(document.querySelector("input[name=name]")).not.toBeNull();
  });

  it("the strength hint grows with length and variety", () => {
    expect(strength("abc")).toBe("weak");
    expect(strength("abcdefgh")).toBe("fair");
    expect(strength("Correct-Horse-42")).toBe("strong");
  });
});

describe("history", () => {
  const room = (id: number, over: Partial<HistoryRoom> = {}): HistoryRoom => ({
    id,
    title: "Late owls",
    hosted: true,
    started_at: Date.UTC(2026, 2, 3, 18, 0),
    ended_at: Date.UTC(2026, 2, 3, 18, 42),
    participants: [
      { key: "aa", name: "Ada", role: "host", joined_at: 1, left_at: 5 },
      { key: "bb", name: "Bo", role: "listener", joined_at: 2, left_at: 3 },
      { key: "bb", name: "Bo", role: "speaker", joined_at: 4, left_at: 5 },
    ],
    message_count: 7,
    ...over,
  });

  it("each past room is a row with title, date, duration, who was there and the message count", () => {
    const s = historyPage({ ...initial, screen: "history" }, [room(9), room(8, { ended_at: null, message_count: 1, title: "<i>x</i>" })], false);
    show(s);
    expect(document.querySelector("[data-screen=history]")).not.toBeNull();
    const row = document.querySelector("[data-history-room='9']");
    expect(row?.querySelector(".h-title")?.textContent).toBe("Late owls");
    expect(row?.querySelector(".h-duration")?.textContent).toBe("42 min");
    expect(row?.querySelector(".h-who")?.textContent).toBe("Ada, Bo");
    expect(row?.querySelector(".h-count")?.textContent).toBe("7 messages");
    expect(row?.querySelector(".h-date")?.textContent).toMatch(/2026/);
    const ongoing = document.querySelector("[data-history-room='8']");
    expect(ongoing?.querySelector(".h-duration")?.textContent).toBe("ongoing");
    expect(ongoing?.querySelector(".h-count")?.textContent).toBe("1 message");
    expect(ongoing?.innerHTML).toContain("&lt;i&gt;");
    expect(document.querySelector("[data-action=history-more]")).toBeNull();
  });

  it("a full page offers Load more", () => {
    const s = historyPage({ ...initial, screen: "history" }, Array.from({ length: 20 }, (_, i) => room(50 - i)), false);
    show(s);
    expect(document.querySelectorAll("[data-history-room]")).toHaveLength(20);
    expect(document.querySelector("[data-action=history-more]")?.textContent).toBe("Load more");
  });

  it("the detail lists each participant once with their role, and the transcript oldest first", () => {
    let s = openDetail({ ...initial, screen: "history" }, room(9));
    s = chatPage(s, 9, [
      { id: 3, at: 3000, from: "bb", name: "Bo", text: "third", mine: false },
      { id: 2, at: 2000, from: "aa", name: "Ada", text: "second", mine: true },
      { id: 1, at: 1000, from: "bb", name: "Bo", text: "first", mine: false },
    ]);
    show(s);
    expect(document.querySelector("[data-screen=history][data-history-detail='9']")).not.toBeNull();
    const ps = [...document.querySelectorAll(".participant")].map((p) => [p.querySelector(".p-name")?.textContent, p.querySelector("[data-role]")?.getAttribute("data-role")]);
    expect(ps).toEqual([
      ["Ada", "host"],
      ["Bo", "speaker"],
    ]);
    const lines = [...document.querySelectorAll("[data-testid=history-chat] li .line-text")].map((l) => l.textContent);
    expect(lines).toEqual(["first", "second", "third"]);
    expect(document.querySelector("[data-message='2']")?.className).toBe("mine");
  });
});

describe("settings screen", () => {
  const settings = { input_device: "USB Mic", output_device: null, push_to_talk_key: "KeyT", noise_suppression: true, echo_cancellation: false, theme: "dark" as const };

  it("shows the devices with the chosen one selected, the toggles, the PTT key and the theme", () => {
    show({ ...initial, screen: "settings", settings, devices: { status: "ok", value: { inputs: ["Built-in", "USB Mic"], outputs: ["Speakers"] } }, inputDbfs: -30 });
    const root = document.querySelector("[data-screen=settings]");
    expect(root).not.toBeNull();
    const input = root?.querySelector<HTMLSelectElement>("select[name=input_device]");
    expect([...(input?.options ?? [])].map((o) => o.value)).toEqual(["", "Built-in", "USB Mic"]);
    // (happy-dom's select.value does not follow `selected` from parsed HTML; the attribute is what the view sets.)
    expect(input?.querySelector<HTMLOptionElement>("option[selected]")?.value).toBe("USB Mic");
    expect(root?.querySelector<HTMLOptionElement>("select[name=output_device] option[selected]")?.value).toBe("");
    expect(root?.querySelector<HTMLInputElement>("input[name=noise_suppression]")?.checked).toBe(true);
    expect(root?.querySelector<HTMLInputElement>("input[name=echo_cancellation]")?.checked).toBe(false);
    expect(root?.querySelector<HTMLInputElement>("input[name=theme]:checked")?.value).toBe("dark");
    expect(root?.querySelector("[data-action=ptt-capture]")?.textContent).toContain("T");
    expect(root?.querySelector("[role=meter]")?.getAttribute("aria-valuenow")).toBe("50");
    expect(root?.querySelector("form[data-form=passphrase] input[name=new][data-strength]")).not.toBeNull();
    expect(root?.querySelector("form[data-form=backup] input[name=path]")).not.toBeNull();
  });

  it("checked boxes, the theme and chosen devices follow the state, so a refused change reverts", () => {
    const s = { ...initial, screen: "settings" as const, settings, devices: { status: "ok" as const, value: { inputs: ["Built-in", "USB Mic"], outputs: ["Speakers"] } } };
    const root = show(s);
    const noise = root.querySelector<HTMLInputElement>("input[name=noise_suppression]") as HTMLInputElement;
    const light = root.querySelector<HTMLInputElement>("input[name=theme][value=light]") as HTMLInputElement;
    const input = root.querySelector<HTMLSelectElement>("select[name=input_device]") as HTMLSelectElement;
    // (Not read after the first render: happy-dom, unlike browsers and jsdom, loses an
    // option's selectedness when lit-html inserts it already selected.)
    noise.checked = false;
    light.checked = true;
    input.value = "Built-in";
    render(s, root);
    expect(noise.checked).toBe(true);
    expect(root.querySelector<HTMLInputElement>("input[name=theme]:checked")?.value).toBe("dark");
    expect(input.value).toBe("USB Mic");
  });

  it("an error note inserted above the fields keeps the fields (same elements)", () => {
    const s = { ...initial, screen: "settings" as const, settings, devices: { status: "ok" as const, value: { inputs: ["Built-in"], outputs: [] } } };
    const root = show(s);
    const select = root.querySelector("select[name=input_device]");
    const path = root.querySelector<HTMLInputElement>("form[data-form=backup] input[name=path]") as HTMLInputElement;
    path.value = "/tmp/backup";
    render({ ...s, notes: { settings: "no input device named USB", backup: { ok: false, text: "disk full" } } }, root);
    expect(root.querySelector("form[data-form=settings] [role=alert]")?.textContent).toBe("no input device named USB");
    expect(root.querySelector("form[data-form=backup] [role=alert]")?.textContent).toBe("disk full");
    expect(root.querySelector("select[name=input_device]")).toBe(select);
    expect(root.querySelector("form[data-form=backup] input[name=path]")).toBe(path);
    render(s, root);
    expect(root.querySelector("[role=alert]")).toBeNull();
    expect(root.querySelector("select[name=input_device]")).toBe(select);
    expect(path.value).toBe("/tmp/backup");
  });

  it("a chosen device that is not connected stays listed, marked as such", () => {
    show({ ...initial, screen: "settings", settings, devices: { status: "ok", value: { inputs: ["Built-in"], outputs: [] } } });
    const opt = document.querySelector<HTMLOptionElement>("select[name=input_device] option[value='USB Mic']");
    expect(opt?.hasAttribute("selected")).toBe(true);
    expect(opt?.textContent).toContain("not connected");
  });
});

describe("navigation", () => {
  it("Home, History and Settings are always there; the room only while in one, marked current", () => {
    show({ ...initial, screen: "home", profile: { name: "Ada", fingerprint: "1" } });
    expect([...document.querySelectorAll<HTMLElement>("nav [data-nav]")].map((b) => b.dataset.nav)).toEqual(["home", "history", "settings"]);
    expect(document.querySelector("[data-nav=home]")?.getAttribute("aria-current")).toBe("page");
    show(joined);
    expect([...document.querySelectorAll<HTMLElement>("nav [data-nav]")].map((b) => b.dataset.nav)).toEqual(["home", "room", "history", "settings"]);
    expect(document.querySelector("nav [data-nav=room]")?.getAttribute("aria-current")).toBe("page");
  });

  it("home lists the last five rooms and contacts with verified and key-changed marks", () => {
    const rooms = Array.from({ length: 7 }, (_, i) => ({ id: i + 1, title: `R${i + 1}`, hosted: false, started_at: 0, ended_at: 1000, participants: [], message_count: 0 }));
    const contacts = [
      { key: "bb", name: "Bo", verified: true, key_changed: false, safety_number: "", last_seen: null },
      { key: "cc", name: "Cy", verified: false, key_changed: true, safety_number: "", last_seen: null },
    ];
    show({ ...initial, screen: "home", profile: { name: "Ada", fingerprint: "1" }, recent: { status: "ok", value: rooms }, contacts: { status: "ok", value: contacts } });
    expect(document.body.textContent).toContain("Signed in as");
    expect(document.querySelectorAll("[data-recent-room]")).toHaveLength(5);
    expect(document.querySelector("[data-contact=bb] [aria-label=verified]")).not.toBeNull();
    expect(document.querySelector("[data-contact=cc] [aria-label='key changed']")).not.toBeNull();
    expect(document.querySelector("[data-contact=cc] [aria-label=verified]")).toBeNull();
  });
});

describe("dialogs", () => {
  it("a stage invitation asks with Accept and Decline and says the microphone will turn on", () => {
    show({ ...joined, dialog: { kind: "stage_invite", key: "aa", name: "Ada <i>" } });
    const box = document.querySelector("[role=dialog][aria-modal=true][data-dialog=stage_invite]");
    expect(box?.querySelector("[data-testid=stage-invite]")?.textContent).toBe("Ada <i> invites you to speak. Your microphone will turn on.");
    const buttons = [...(box?.querySelectorAll<HTMLButtonElement>("[data-action=stage-answer]") ?? [])];
    expect(buttons.map((b) => [b.textContent, b.dataset.accept])).toEqual([
      ["Accept", "true"],
      ["Decline", "false"],
    ]);
    expect(box?.querySelector("[autofocus]")?.textContent).toBe("Decline");
  });

  it("every dialog is a native <dialog>, named by its title", () => {
    const number = { key: "bb", name: "Bo", safety_number: "1".repeat(60), verified: false };
    for (const dialog of [{ kind: "invite" }, { kind: "stage_invite", key: "aa", name: "Ada" }, { kind: "safety", number }] as const) {
      show({ ...joined, invite: "salon:x", dialog });
      const box = document.querySelector(`[data-dialog=${dialog.kind}]`);
      expect(box?.tagName).toBe("DIALOG");
      expect(document.getElementById(box?.getAttribute("aria-labelledby") ?? "")?.tagName).toBe("H2");
      expect(box?.querySelectorAll("[data-action=close-dialog], [data-action=stage-answer]").length).toBeGreaterThan(0);
    }
  });

  it("an open dialog makes the rest of the window inert", () => {
    show({ ...joined, invite: "salon:x", dialog: { kind: "invite" } });
    expect(document.querySelector(".shell")?.hasAttribute("inert")).toBe(true);
    show({ ...joined, invite: "salon:x" });
    expect(document.querySelector(".shell")?.hasAttribute("inert")).toBe(false);
  });
});
