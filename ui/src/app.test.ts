// The controller against a mocked Tauri IPC: what the user does, which commands go out,
// and what the screen shows with the answers.
import { afterEach, describe, expect, it, vi } from "vitest";
import type { NodeEvent, RoomInfo, Settings } from "./api";

type Answer = (args: Record<string, unknown>) => unknown;
const calls: [string, Record<string, unknown>][] = [];
let answers: Record<string, Answer> = {};
vi.mock("@tauri-apps/api/core", () => ({
  invoke: async (cmd: string, args?: Record<string, unknown>) => {
    calls.push([cmd, args ?? {}]);
    const f = answers[cmd];
    if (!f) throw { code: "unmocked", message: `no answer for ${cmd}` };
    return f(args ?? {});
  },
}));
let emitNode: (e: NodeEvent) => void = () => {};
vi.mock("@tauri-apps/api/event", () => ({
  listen: async (_name: string, f: (e: { payload: NodeEvent }) => void) => {
    emitNode = (payload) => f({ payload });
    return () => {};
  },
}));

const { start } = await import("./app");

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
};
const sent = (cmd: string) => calls.filter((c) => c[0] === cmd).map((c) => c[1]);
const $ = <T extends Element = HTMLElement>(css: string) => document.querySelector<T>(css);
const click = (css: string) => {
  const el = $(css);
  if (!el) throw new Error(`no ${css}`);
  el.click();
};
const key = (type: "keydown" | "keyup", code: string, keyName = code, target: EventTarget = document.body) =>
  target.dispatchEvent(new KeyboardEvent(type, { code, key: keyName, bubbles: true }));

const baseSettings: Settings = { input_device: null, output_device: null, push_to_talk_key: null, noise_suppression: true, echo_cancellation: true, theme: "system" };
const roomInfo = (me: "speaker" | "listener" | "host" = "speaker", muted = false): RoomInfo => ({
  title: "Jazz",
  epoch: 1,
  safety_code: "1111 2222 3333",
  host: "aa",
  members: [
    { key: "aa", name: "Ada", role: "host", hand_raised: false, muted: false, me: me === "host" },
    { key: "bb", name: "Bo", role: me === "host" ? "listener" : me, hand_raised: false, muted, me: me !== "host" },
  ],
});

let app: ReturnType<typeof start> | undefined;
afterEach(() => {
  app?.stop();
  localStorage.clear();
});

async function mount(over: Record<string, Answer> = {}, unlocked = true) {
  document.body.innerHTML = `<main id="app"></main><div id="toasts"></div>`;
  delete document.documentElement.dataset.theme;
  calls.length = 0;
  let settings = { ...baseSettings };
  answers = {
    profile_status: () => ({ exists: true, unlocked }),
    get_settings: () => settings,
    set_settings: (a) => (settings = a.settings as Settings),
    contacts: () => [],
    history_rooms: () => [],
    devices: () => ({ inputs: ["Built-in", "USB"], outputs: ["Speakers"] }),
    mic_test: () => null,
    set_muted: () => null,
    push_to_talk: () => null,
    push_to_talk_reach: (a) => ({ everywhere: a.key !== "ShiftLeft", note: `reach of ${String(a.key)}` }),
    ...over,
  };
  app = start($("#app") as HTMLElement, $("#toasts") as HTMLElement, window);
  await app.ready;
  await flush();
}

describe("unlock", () => {
  it("the theme saved in settings applies at unlock", async () => {
    await mount({ unlock: () => ({ name: "Ada", fingerprint: "12345" }), get_settings: () => ({ ...baseSettings, theme: "dark" }) }, false);
    expect($("[data-screen=unlock]")).not.toBeNull();
    ($("input[name=passphrase]") as HTMLInputElement).value = "pw";
    ($("form[data-form=unlock]") as HTMLFormElement).requestSubmit();
    await flush();
    expect(sent("unlock")).toEqual([{ passphrase: "pw" }]);
    expect(sent("get_settings")).toHaveLength(1);
    expect(document.documentElement.dataset.theme).toBe("dark");
    expect(document.body.textContent).toContain("Signed in as");
  });

  it("a wrong passphrase shows the node's message as an alert", async () => {
    await mount({ unlock: () => Promise.reject({ code: "wrong_passphrase", message: "wrong passphrase: try again" }) }, false);
    ($("input[name=passphrase]") as HTMLInputElement).value = "nope";
    ($("form[data-form=unlock]") as HTMLFormElement).requestSubmit();
    await flush();
    expect($("[role=alert]")?.textContent).toContain("wrong passphrase");
  });
});

describe("settings", () => {
  it("opening Settings starts the mic test and leaving stops it", async () => {
    await mount();
    click("[data-nav=settings]");
    await flush();
    expect($("[data-screen=settings]")).not.toBeNull();
    expect(sent("mic_test")).toEqual([{ on: true }]);
    emitNode({ event: "levels", input_dbfs: -15, transmitting: false, peers: [] });
    expect($("[role=meter]")?.getAttribute("aria-valuenow")).toBe("75");
    click("[data-nav=home]");
    await flush();
    expect(sent("mic_test")).toEqual([{ on: true }, { on: false }]);
  });

  it("each change saves the full settings object and the node's answer is what shows", async () => {
    await mount({ set_settings: (a) => ({ ...(a.settings as Settings), noise_suppression: false }) });
    click("[data-nav=settings]");
    await flush();
    const echo = $<HTMLInputElement>("input[name=echo_cancellation]") as HTMLInputElement;
    echo.checked = false;
    echo.dispatchEvent(new Event("change", { bubbles: true }));
    await flush();
    expect(sent("set_settings")).toEqual([{ settings: { ...baseSettings, echo_cancellation: false } }]);
    // The node turned noise suppression off too: its answer wins.
    expect($<HTMLInputElement>("input[name=noise_suppression]")?.checked).toBe(false);
    expect(app?.state().settings?.noise_suppression).toBe(false);
    const dark = $<HTMLInputElement>("input[name=theme][value=dark]") as HTMLInputElement;
    dark.checked = true;
    dark.dispatchEvent(new Event("change", { bubbles: true }));
    await flush();
    expect(sent("set_settings").at(-1)).toEqual({ settings: { ...baseSettings, echo_cancellation: false, noise_suppression: false, theme: "dark" } });
    expect(document.documentElement.dataset.theme).toBe("dark");
  });

  it("a missing device is explained and the old selection stays", async () => {
    await mount({ get_settings: () => ({ ...baseSettings, input_device: "Built-in" }), set_settings: () => Promise.reject({ code: "audio", message: "no input device named USB" }) });
    click("[data-nav=settings]");
    await flush();
    const sel = $<HTMLSelectElement>("select[name=input_device]") as HTMLSelectElement;
    sel.value = "USB";
    sel.dispatchEvent(new Event("change", { bubbles: true }));
    await flush();
    expect(sent("set_settings")).toEqual([{ settings: { ...baseSettings, input_device: "USB" } }]);
    expect($("[data-screen=settings] [role=alert]")?.textContent).toBe("no input device named USB");
    expect(sel.value).toBe("Built-in");
    expect(app?.state().settings?.input_device).toBe("Built-in");
  });

  it("the push-to-talk key is captured from the next key press; Escape clears it", async () => {
    await mount();
    click("[data-nav=settings]");
    await flush();
    click("[data-action=ptt-capture]");
    expect($("[data-action=ptt-capture]")?.textContent).toContain("Press a key");
    key("keydown", "KeyG", "g");
    await flush();
    expect(sent("set_settings").at(-1)).toEqual({ settings: { ...baseSettings, push_to_talk_key: "KeyG" } });
    expect($("[data-action=ptt-capture]")?.textContent).toContain("G");
    click("[data-action=ptt-capture]");
    key("keydown", "Escape");
    await flush();
    expect(sent("set_settings").at(-1)).toEqual({ settings: { ...baseSettings, push_to_talk_key: null } });
  });

  it("says where the push-to-talk key works, asking again when the key changes", async () => {
    await mount({ get_settings: () => ({ ...baseSettings, push_to_talk_key: "Space" }) });
    click("[data-nav=settings]");
    await flush();
    expect($("[data-testid=ptt-reach]")?.textContent).toBe("reach of Space");
    click("[data-action=ptt-capture]");
    key("keydown", "ShiftLeft", "Shift");
    await flush();
    expect(sent("push_to_talk_reach").at(-1)).toEqual({ key: "ShiftLeft" });
    expect($("[data-testid=ptt-reach]")?.textContent).toBe("reach of ShiftLeft");
  });

  it("a wrong old passphrase is explained; differing new ones are caught before asking", async () => {
    await mount({ change_passphrase: () => Promise.reject({ code: "wrong_passphrase", message: "wrong passphrase" }) });
    click("[data-nav=settings]");
    await flush();
    const form = $<HTMLFormElement>("form[data-form=passphrase]") as HTMLFormElement;
    const fill = (old: string, nw: string, confirm: string) => {
      (form.querySelector("[name=old]") as HTMLInputElement).value = old;
      (form.querySelector("[name=new]") as HTMLInputElement).value = nw;
      (form.querySelector("[name=confirm]") as HTMLInputElement).value = confirm;
      form.requestSubmit();
    };
    fill("old one", "new passphrase!", "new passphrase?");
    await flush();
    expect(sent("change_passphrase")).toEqual([]);
    expect(form.querySelector("[role=alert]")?.textContent).toContain("differ");
    fill("old one", "new passphrase!", "new passphrase!");
    await flush();
    expect(sent("change_passphrase")).toEqual([{ oldPassphrase: "old one", newPassphrase: "new passphrase!" }]);
    expect($("form[data-form=passphrase] [role=alert]")?.textContent).toBe("wrong passphrase");
  });

  it("the strength hint follows the new passphrase and survives redraws", async () => {
    await mount();
    click("[data-nav=settings]");
    await flush();
    const nw = $<HTMLInputElement>("form[data-form=passphrase] [name=new]") as HTMLInputElement;
    nw.value = "Correct-Horse-42";
    nw.dispatchEvent(new Event("input", { bubbles: true }));
    emitNode({ event: "levels", input_dbfs: -20, transmitting: false, peers: [] });
    expect($("#new-strength")?.textContent).toBe("Strength: strong");
  });

  it("export backup shows the path the node wrote", async () => {
    await mount({ export_backup: (a) => (a.path as string | null) ?? "/home/ada/salon-backup.salon" });
    click("[data-nav=settings]");
    await flush();
    ($("form[data-form=backup]") as HTMLFormElement).requestSubmit();
    await flush();
    expect(sent("export_backup")).toEqual([{ path: null }]);
    expect($("form[data-form=backup] [role=status]")?.textContent).toContain("/home/ada/salon-backup.salon");
  });
});

describe("push-to-talk in a room", () => {
  it("with a key set, pressing and releasing it tells the node, in order, and nothing else", async () => {
    // The node mutes the speaker unless the key is held (pinned in salon-node's
    // tests/api.rs); the view only passes the key on.
    await mount({ get_settings: () => ({ ...baseSettings, push_to_talk_key: "Space" }) });
    emitNode({ event: "joined", room: roomInfo("speaker", true) });
    await flush();
    key("keydown", "Space", " ");
    await flush();
    expect(sent("push_to_talk")).toEqual([{ pressed: true }]);
    emitNode({ event: "room", room: roomInfo("speaker", false) });
    key("keyup", "Space", " ");
    await flush();
    expect(sent("push_to_talk")).toEqual([{ pressed: true }, { pressed: false }]);
    expect(sent("set_muted")).toEqual([]);
    expect($(".ptt-hint")?.textContent).toContain("Space");
  });

  it("typing the key's character in the chat box types instead of talking", async () => {
    await mount({ get_settings: () => ({ ...baseSettings, push_to_talk_key: "KeyT" }) });
    emitNode({ event: "joined", room: roomInfo("speaker", true) });
    await flush();
    key("keydown", "KeyT", "t", $("#chat-text") as HTMLElement);
    await flush();
    expect(sent("push_to_talk")).toEqual([]);
  });

  it("without a key, M toggles mute and H the hand", async () => {
    await mount({ set_hand: () => null });
    emitNode({ event: "joined", room: roomInfo("speaker", false) });
    key("keydown", "KeyM", "m");
    await flush();
    expect(sent("set_muted")).toEqual([{ muted: true }]);
    emitNode({ event: "room", room: roomInfo("listener") });
    key("keydown", "KeyH", "h");
    await flush();
    expect(sent("set_hand")).toEqual([{ raised: true }]);
  });
});

describe("joining a room", () => {
  it("keeps a chat line that arrives while the contacts load", async () => {
    let contactsLoaded: (v: unknown) => void = () => {};
    let asked = 0;
    // Home loads contacts at once; entering the room loads them again, slowly.
    await mount({ contacts: () => (asked++ === 0 ? [] : new Promise((r) => (contactsLoaded = r))) });
    emitNode({ event: "joined", room: roomInfo("listener") });
    await flush();
    expect(asked).toBe(2);
    emitNode({ event: "chat", from: "aa", name: "Ada", text: "welcome, Bo" });
    contactsLoaded([]);
    await flush();
    expect($("[data-testid=chat]")?.textContent).toContain("welcome, Bo");
  });
});

describe("people in a room", () => {
  it("the volume slider sets the peer's volume as 0.0–2.0", async () => {
    await mount({ set_peer_volume: () => null });
    emitNode({ event: "joined", room: roomInfo("host") });
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      click("[data-action=menu][data-target=bb]");
      const slider = $<HTMLInputElement>("input[data-volume=bb]") as HTMLInputElement;
      expect(document.activeElement).toBe(slider);
      for (const v of ["120", "150"]) {
        slider.value = v;
        slider.dispatchEvent(new Event("input", { bubbles: true }));
      }
      vi.advanceTimersByTime(100);
      expect(sent("set_peer_volume")).toEqual([{ target: "bb", volume: 1.5 }]);
      expect($("[data-menu=bb] output")?.textContent).toBe("150%");
    } finally {
      vi.useRealTimers();
    }
  });

  it("compare safety numbers opens the dialog and Mark as verified tells the node", async () => {
    const sn = { key: "bb", name: "Bo", safety_number: "0".repeat(55) + "12345", verified: false };
    await mount({ safety_number: () => sn, verify_contact: () => null });
    emitNode({ event: "joined", room: roomInfo("host") });
    click("[data-action=menu][data-target=bb]");
    click("[data-menu=bb] [data-action=safety]");
    await flush();
    expect(sent("safety_number")).toEqual([{ target: "bb" }]);
    expect($("[role=dialog][aria-modal=true] .safety-number li:last-child")?.textContent).toBe("12345");
    click("[data-action=verify]");
    await flush();
    expect(sent("verify_contact")).toEqual([{ target: "bb", verified: true }]);
    expect($("[data-action=verify]")?.textContent).toBe("Unmark");
    key("keydown", "Escape");
    expect($("[role=dialog][aria-modal=true]")).toBeNull();
    // Focus returns to the person's menu button.
    expect(document.activeElement).toBe($("[data-action=menu][data-target=bb]"));
  });

  it("a stage invitation prompts, and Accept answers yes to the node", async () => {
    await mount({ answer_stage_invite: () => null });
    emitNode({ event: "joined", room: roomInfo("listener") });
    emitNode({ event: "stage_invited", key: "aa", name: "Ada" });
    await flush();
    expect($("[data-testid=stage-invite]")?.textContent).toBe("Ada invites you to speak. Your microphone will turn on.");
    // Focus starts on Decline: a stray Enter must not open the microphone.
    expect(document.activeElement?.textContent).toBe("Decline");
    expect(sent("answer_stage_invite")).toEqual([]);
    click("[data-action=stage-answer][data-accept=true]");
    await flush();
    expect(sent("answer_stage_invite")).toEqual([{ accept: true }]);
    expect($("[role=dialog]")).toBeNull();
  });

  it("Decline, or dismissing the stage prompt, answers no", async () => {
    await mount({ answer_stage_invite: () => null });
    emitNode({ event: "joined", room: roomInfo("listener") });
    emitNode({ event: "stage_invited", key: "aa", name: "Ada" });
    await flush();
    click("[data-action=stage-answer][data-accept=false]");
    await flush();
    emitNode({ event: "stage_invited", key: "aa", name: "Ada" });
    await flush();
    key("keydown", "Escape");
    await flush();
    expect(sent("answer_stage_invite")).toEqual([{ accept: false }, { accept: false }]);
    expect($("[role=dialog]")).toBeNull();
  });

  it("moderator actions in the menu call moderate with the target", async () => {
    await mount({ moderate: () => null });
    emitNode({ event: "joined", room: roomInfo("host") });
    click("[data-action=menu][data-target=bb]");
    click("[data-menu=bb] [data-op=make_moderator]");
    await flush();
    expect(sent("moderate")).toEqual([{ target: "bb", action: "make_moderator" }]);
    expect($("[data-menu=bb]")).toBeNull();
  });
});

describe("redraws", () => {
  it("typing in the chat box survives level, link, chat and roster events: same field, text, caret and focus", async () => {
    await mount();
    emitNode({ event: "joined", room: roomInfo("host") });
    await flush();
    const field = $<HTMLInputElement>("#chat-text") as HTMLInputElement;
    field.focus();
    field.value = "hello there";
    field.setSelectionRange(5, 5);
    emitNode({ event: "levels", input_dbfs: -20, transmitting: true, peers: [{ key: "bb", name: "Bo", rms_dbfs: -20, speaking: true }] });
    emitNode({ event: "links", links: [{ key: "bb", name: "Bo", rtt_ms: 40, audio_received: 100, audio_lost: 0, jitter_buffer_ms: 40, reported_loss_permille: null, up: true, path: "direct", via: null }] });
    emitNode({ event: "chat", from: "bb", name: "Bo", text: "hi" });
    emitNode({ event: "room", room: { ...roomInfo("host"), members: [...roomInfo("host").members, { key: "cc", name: "Cy", role: "listener", hand_raised: true, muted: false, me: false }] } });
    await flush();
    expect($("[data-key=bb]")?.classList.contains("speaking")).toBe(true);
    expect($("[data-key=cc]")).not.toBeNull();
    expect($("#chat-text")).toBe(field);
    expect(field.value).toBe("hello there");
    expect(document.activeElement).toBe(field);
    expect([field.selectionStart, field.selectionEnd]).toEqual([5, 5]);
  });

  it("sending a chat line empties the field", async () => {
    await mount({ send_chat: () => null });
    emitNode({ event: "joined", room: roomInfo("host") });
    const field = $<HTMLInputElement>("#chat-text") as HTMLInputElement;
    field.value = "hello";
    ($("form[data-form=chat]") as HTMLFormElement).requestSubmit();
    await flush();
    expect(sent("send_chat")).toEqual([{ text: "hello" }]);
    expect(field.value).toBe("");
  });
});

describe("dialogs", () => {
  it("the invite dialog opens as a modal <dialog>; a click on the backdrop closes it and focus goes back", async () => {
    await mount();
    emitNode({ event: "hosting", invite: "salon:abc" });
    emitNode({ event: "joined", room: roomInfo("host") });
    click("[data-action=show-invite]");
    await flush();
    const box = $<HTMLDialogElement>("dialog[data-dialog=invite]");
    expect(box?.open).toBe(true);
    expect(document.activeElement?.closest("dialog")).toBe(box);
    expect($(".shell")?.hasAttribute("inert")).toBe(true);
    // Feedback shows inside the dialog: outside it, it would be inert and under the backdrop.
    click("dialog [data-action=copy-invite]");
    await flush();
    expect($("dialog .toasts")?.textContent).toBe("Invite copied");
    // A click inside the dialog is not a click on the backdrop.
    click("dialog .lede");
    expect($("dialog")).toBe(box);
    box?.click();
    await flush();
    expect($("dialog")).toBeNull();
    expect($(".shell")?.hasAttribute("inert")).toBe(false);
    expect(document.activeElement).toBe($("[data-action=show-invite]"));
  });

  it("the browser's own close request on the stage prompt declines, as Escape does", async () => {
    await mount({ answer_stage_invite: () => null });
    emitNode({ event: "joined", room: roomInfo("listener") });
    emitNode({ event: "stage_invited", key: "aa", name: "Ada" });
    await flush();
    const cancel = new Event("cancel", { cancelable: true });
    $("dialog")?.dispatchEvent(cancel);
    await flush();
    expect(cancel.defaultPrevented).toBe(true);
    expect(sent("answer_stage_invite")).toEqual([{ accept: false }]);
    expect($("dialog")).toBeNull();
  });
});

describe("who is speaking, for screen readers", () => {
  it("the live region names who speaks once it settles, and says when everyone stopped", async () => {
    await mount();
    emitNode({ event: "joined", room: roomInfo("host") });
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    try {
      const levels = (ms: number, speaking: boolean) => {
        for (let t = 0; t < ms; t += 100) {
          emitNode({ event: "levels", input_dbfs: -20, transmitting: true, peers: [{ key: "bb", name: "Bo", rms_dbfs: -20, speaking }] });
          vi.advanceTimersByTime(100);
        }
      };
      const region = () => $("[data-testid=speaking-now]");
      expect(region()?.getAttribute("aria-live")).toBe("polite");
      levels(3000, false);
      expect(region()?.textContent).toBe("");
      levels(3000, true);
      // Our own voice (transmitting, loud) is not announced to ourselves.
      expect(region()?.textContent).toBe("Bo is speaking");
      levels(4000, false);
      expect(region()?.textContent).toBe("No one is speaking");
      emitNode({ event: "left", reason: "ended" });
      expect(region()?.textContent ?? "").toBe("");
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("history", () => {
  const room = (id: number) => ({ id, title: `Room ${id}`, hosted: false, started_at: id, ended_at: id + 60_000, participants: [], message_count: 2 });

  it("pages with before = the last id shown, and a row opens its transcript oldest first", async () => {
    await mount({
      history_rooms: (a) => (a.before == null ? Array.from({ length: 20 }, (_, i) => room(100 - i)) : [room(10)]),
      history_chat: () => [
        { id: 2, at: 2, from: "bb", name: "Bo", text: "later", mine: false },
        { id: 1, at: 1, from: "aa", name: "Ada", text: "earlier", mine: true },
      ],
    });
    click("[data-nav=history]");
    await flush();
    expect(sent("history_rooms").at(-1)).toEqual({ before: null, limit: 20 });
    expect(document.querySelectorAll("[data-history-room]")).toHaveLength(20);
    click("[data-action=history-more]");
    await flush();
    expect(sent("history_rooms").at(-1)).toEqual({ before: 81, limit: 20 });
    expect(document.querySelectorAll("[data-history-room]")).toHaveLength(21);
    expect($("[data-action=history-more]")).toBeNull();
    click("[data-history-room='10']");
    await flush();
    expect(sent("history_chat")).toEqual([{ room: 10, before: null, limit: 50 }]);
    expect([...document.querySelectorAll("[data-testid=history-chat] .line-text")].map((l) => l.textContent)).toEqual(["earlier", "later"]);
  });

  it("a recent room on Home opens the same detail", async () => {
    await mount({ history_rooms: () => [room(7)], history_chat: () => [] });
    click("[data-recent-room='7']");
    await flush();
    expect($("[data-screen=history][data-history-detail='7']")).not.toBeNull();
  });
});

describe("theme across restarts", () => {
  it("the last saved theme is worn before unlock, and settings at unlock still win", async () => {
    localStorage.setItem("salon.theme", "dark");
    await mount({ unlock: () => ({ name: "Ada", fingerprint: "1" }), get_settings: () => ({ ...baseSettings, theme: "light" }) }, false);
    expect(document.documentElement.dataset.theme).toBe("dark");
    ($("input[name=passphrase]") as HTMLInputElement).value = "pw";
    ($("form[data-form=unlock]") as HTMLFormElement).requestSubmit();
    await flush();
    expect(document.documentElement.dataset.theme).toBe("light");
    expect(localStorage.getItem("salon.theme")).toBe("light");
  });
});

describe("push-to-talk and the mute button", () => {
  it("with push-to-talk on, Unmute explains the key instead of opening the microphone", async () => {
    await mount({ get_settings: () => ({ ...baseSettings, push_to_talk_key: "KeyT" }) });
    emitNode({ event: "joined", room: roomInfo("speaker", true) });
    click("[data-action=mute]");
    await flush();
    expect(sent("set_muted")).toEqual([]);
    expect($("#toasts")?.textContent).toContain("hold T to talk");
  });
});

describe("settings when the mic test fails", () => {
  it("the meter says why, and the device lists still show", async () => {
    await mount({ mic_test: () => Promise.reject({ code: "audio", message: "no microphone" }) });
    click("[data-nav=settings]");
    await flush();
    expect($("[data-screen=settings] .meter-row")?.textContent).toContain("no microphone");
    expect(document.querySelectorAll("select[name=input_device] option")).toHaveLength(3);
  });
});
